"""The dashboard's page frame: escaped HTML, one stylesheet served by us, no scripts, no outside hosts."""

from __future__ import annotations

from html import escape

from storage.signins import WebSession

# Every page renders offline: our own stylesheet, system fonts, no script, nothing from another host.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: a form then posts `Origin: null`, which the sign-in must refuse (another site can send it).
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAV = (("/dashboard", "Spend"), ("/dashboard/budgets", "Budgets"), ("/dashboard/prompts", "Prompts"))


def e(value: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return escape(str(value), quote=True)


def page(title: str, body: str, session: WebSession | None = None, *, csrf: str = "", current: str = "") -> str:
    """A whole HTML document: header with navigation and who is signed in, then `body`."""
    header = ""
    if session is not None:
        grant = session.grant
        links = "".join(
            f'<a href="{href}"{" aria-current=page" if href == current else ""}>{label}</a>' for href, label in NAV
        )
        role = "admin" if grant.is_admin else "member"
        header = (
            f'<header><strong class="brand">teambot</strong><nav>{links}</nav>'
            f'<span class="who">{e(grant.display_name)} · {role} · {e(grant.platform)} team {e(grant.team_id)}</span>'
            f'<form method="post" action="/dashboard/logout" class="inline">{csrf_field(csrf)}'
            '<button type="submit" class="link">Sign out</button></form></header>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)} · teambot</title><link rel="stylesheet" href="/dashboard/static/style.css">'
        '<link rel="icon" href="data:,">'
        f"</head><body>{header}<main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def csrf_field(token: str) -> str:
    """The hidden field every form carries."""
    return f'<input type="hidden" name="csrf" value="{e(token)}">' if token else ""


def notice(text: str, kind: str = "ok") -> str:
    """A message above the page's content."""
    return f'<p class="notice {kind}" role="status">{e(text)}</p>'


def table(head: list[str], rows: list[list[str]], *, numeric: set[int] | None = None, cls: str = "") -> str:
    """A table; cells are HTML already (escape text with `e`)."""
    numeric = numeric or set()

    def cells(tag: str, row: list[str]) -> str:
        return "".join(f"<{tag}{' class=num' if i in numeric else ''}>{c}</{tag}>" for i, c in enumerate(row))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{cells("th", head)}</tr></thead><tbody>{body}</tbody></table>'


STYLE = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #f6f7f9; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .6rem 1.5rem; background: #fff;
  border-bottom: 1px solid var(--line); }
header nav { display: flex; gap: .9rem; }
header nav a { color: var(--accent); text-decoration: none; padding: .2rem 0; }
header nav a[aria-current] { border-bottom: 2px solid var(--accent); font-weight: 600; }
.brand { font-size: 1.05rem; }
.who { margin-left: auto; color: var(--muted); font-size: .9rem; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: .6rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.8rem 0 .6rem; }
section, .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1rem;
  margin-bottom: 1rem; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
.figure { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .7rem 1rem; min-width: 11rem; }
.figure .label { color: var(--muted); font-size: .85rem; }
.figure .value { font-size: 1.4rem; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .85rem; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.side { table-layout: fixed; }
pre, .text { white-space: pre-wrap; word-break: break-word; font: 13px/1.4 ui-monospace, Menlo, Consolas, monospace;
  margin: 0; }
.text { font: inherit; }
.diff .add { background: #e6f6e6; } .diff .del { background: #fbe9e9; } .diff .hunk { color: var(--muted); }
.diff span { display: block; }
.notice { padding: .6rem .9rem; border-radius: 6px; border: 1px solid; }
.notice.ok { background: #eef7ee; border-color: #9fcf9f; } .notice.error { background: #fdeeee; border-color: #e2a3a3; }
form.inline { display: inline; margin: 0; }
button, input, select { font: inherit; padding: .3rem .5rem; }
button.link { background: none; border: 0; color: var(--accent); cursor: pointer; padding: 0; }
.limit-form { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; }
.limit-form label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
.muted { color: var(--muted); }
meter { width: 12rem; }
.legend { display: flex; gap: 1rem; font-size: .85rem; color: var(--muted); }
.legend svg { vertical-align: middle; }
svg.chart { width: 100%; height: auto; }
.rating { white-space: nowrap; }
"""
