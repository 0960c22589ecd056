"""The prompt pages: the team's library, one prompt's versions and runs, a diff, and runs side by side."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from adapters.web.layout import e, table
from adapters.web.visit import Visit
from bot.billing.money import format_usd
from bot.dashboard.library import library, parse_run_ids, pick_runs, prompt_page
from bot.prompts.experiments import parse_version
from storage.prompt_records import PromptRun, PromptVersion


def _href(name: str, tail: str = "") -> str:
    return f"/dashboard/prompts/{quote(name, safe='')}{tail}"


def _temp(value: float | None) -> str:
    return "default" if value is None else f"{value:g}"


def _ratings(run: PromptRun) -> str:
    if not run.ratings:
        return '<span class="muted">not rated</span>'
    average = sum(r.rating for r in run.ratings) / len(run.ratings)
    items = "".join(
        f"<li>{r.rating}/5 by {e(r.user_id)}{': ' + e(r.comment) if r.comment else ''}</li>" for r in run.ratings
    )
    return f'<span class="rating">★ {average:.1f}/5</span><ul>{items}</ul>'


async def prompts(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The library: every live prompt of the team."""
    found = await library(visit.engine.store, visit.session)
    if not found:
        body = (
            '<p class="muted">No saved prompts yet. Save one in the chat: /prompt save &lt;name&gt; &lt;text&gt;.</p>'
        )
    else:
        body = table(
            ["prompt", "latest", "created by", "runs", "updated"],
            [
                [f'<a href="{_href(p.name)}">{e(p.name)}</a>', f"v{p.latest_version}", e(p.created_by),
                 f"{p.runs:,}", f"{p.updated_at:%Y-%m-%d %H:%M}"]
                for p in found
            ],
            numeric={3},
        )  # fmt: skip
    return visit.page("Prompts", body, current="/dashboard/prompts")


async def prompt(request: web.Request, visit: Visit) -> web.StreamResponse:
    """One prompt: versions with their text, how each did, a diff picker, comparisons and runs."""
    name = request.match_info["name"]
    found = await prompt_page(visit.engine.store, visit.session, name)
    numbers = [v.version for v in found.versions]
    versions = "".join(
        f'<section id="v{v.version}"><h3>v{v.version} <span class="muted">by {e(v.author_id)}, '
        f"{v.created_at:%Y-%m-%d %H:%M} · model {e(v.model or 'default')} · temperature {_temp(v.temperature)}"
        f"</span></h3>{'<p><strong>system:</strong> ' + e(v.system_prompt) + '</p>' if v.system_prompt else ''}"
        f"<pre>{e(v.template)}</pre></section>"
        for v in reversed(found.versions)
    )
    before = numbers[-2] if len(numbers) > 1 else numbers[-1]
    diff_form = (
        f'<form method="get" action="{_href(name, "/diff")}" class="limit-form">'
        f'<label>from<select name="a">{_options(numbers, before)}</select></label>'
        f'<label>to<select name="b">{_options(numbers, numbers[-1])}</select></label>'
        '<button type="submit">Show the diff</button></form>'
    )
    stats = table(
        ["version", "runs", "rated", "average rating", "average cost", "average latency"],
        [
            [f"v{s.version}", f"{s.runs:,}", f"{s.rated:,}",
             f"{s.avg_rating:.1f}/5" if s.avg_rating is not None else "–",
             e(format_usd(round(s.avg_cost_nanos))), f"{s.avg_latency_ms / 1000:.1f} s"]
            for s in found.stats
        ],
        numeric={1, 2, 3, 4, 5},
    )  # fmt: skip
    comparisons = "".join(
        f'<li><a href="{_href(name, "/compare?runs=" + ",".join(map(str, ids)))}">'
        f"runs #{', #'.join(map(str, ids))}</a></li>"
        for ids in found.comparisons
    )
    runs = table(
        ["", "run", "version", "model", "temp.", "by", "when", "cost", "latency", "ratings", "output"],
        [
            [f'<input type="checkbox" name="run" value="{r.id}" aria-label="compare run {r.id}">', f"#{r.id}",
             f"v{v.version}", e(r.model), _temp(r.temperature), e(r.user_id), f"{r.created_at:%Y-%m-%d %H:%M}",
             e(format_usd(r.cost_nanos)), f"{r.latency_ms / 1000:.1f} s", _ratings(r), _output(r)]
            for v, r in found.runs
        ],
        numeric={7, 8},
    )  # fmt: skip
    body = (
        f'<p class="muted">{len(found.versions)} version(s) · {len(found.runs)} run(s)</p>'
        f"<h2>How each version did</h2>{stats}<h2>Diff between versions</h2>{diff_form}"
        f"<h2>Comparisons</h2>"
        + (f"<ul>{comparisons}</ul>" if comparisons else '<p class="muted">No /prompt compare yet.</p>')
        + "<h2>Runs</h2>"
        + (
            f'<form method="get" action="{_href(name, "/compare")}">{runs}'
            '<p><button type="submit">Compare the ticked runs side by side</button></p></form>'
            if found.runs
            else '<p class="muted">Not run yet.</p>'
        )
        + f"<h2>Versions</h2>{versions}"
    )
    return visit.page(name, body, current="/dashboard/prompts")


def _options(numbers: list[int], selected: int) -> str:
    return "".join(f'<option value="{n}"{" selected" if n == selected else ""}>v{n}</option>' for n in numbers)


def _output(run: PromptRun) -> str:
    if run.error:
        return f'<span class="muted">failed: {e(run.error)}</span>'
    preview = run.output if len(run.output) <= 160 else run.output[:160] + "…"
    if preview == run.output:
        return f'<div class="text">{e(run.output)}</div>'
    return f'<details><summary>{e(preview)}</summary><div class="text">{e(run.output)}</div></details>'


async def diff(request: web.Request, visit: Visit) -> web.StreamResponse:
    """A unified diff of two versions (system prompt and template)."""
    name = request.match_info["name"]
    a = parse_version(request.query.get("a", ""))
    b = parse_version(request.query.get("b", ""))
    text = await visit.engine.prompts.diff(visit.session.grant.team_id, name, a, b)
    lines = []
    for line in text.splitlines():
        kind = "hunk" if line.startswith(("@@", "---", "+++")) else {"+": "add", "-": "del"}.get(line[:1], "")
        lines.append(f'<span class="{kind}">{e(line) or " "}</span>')
    body = f'<p><a href="{_href(name)}">← {e(name)}</a></p><section><pre class="diff">{"".join(lines)}</pre></section>'
    return visit.page(f"{name}: v{a} → v{b}", body, current="/dashboard/prompts")


async def compare(request: web.Request, visit: Visit) -> web.StreamResponse:
    """Runs side by side, one column per run: version, model, temperature, output, cost, ratings."""
    name = request.match_info["name"]
    ids = parse_run_ids(request.query.get("runs", "")) + [
        int(v) for v in request.query.getall("run", []) if v.isdigit() and len(v) < 16
    ]
    found = await prompt_page(visit.engine.store, visit.session, name)
    chosen = pick_runs(found, ids)
    head = [f"#{r.id} · v{v.version}<br>{e(r.model)} · t={_temp(r.temperature)}" for v, r in chosen]
    rows = [
        [_output_whole(r) for _, r in chosen],
        [
            f"{r.input_tokens:,}+{r.output_tokens:,} tokens · {e(format_usd(r.cost_nanos))} · "
            f"{r.latency_ms / 1000:.1f} s"
            for _, r in chosen
        ],
        [_ratings(r) for _, r in chosen],
    ]
    inputs = _inputs(chosen)
    body = f'<p><a href="{_href(name)}">← {e(name)}</a> · {inputs}</p>' + table(head, rows, cls="side")
    return visit.page(f"{name}: side by side", body, current="/dashboard/prompts")


def _output_whole(run: PromptRun) -> str:
    if run.error:
        return f'<span class="muted">failed: {e(run.error)}</span>'
    return f'<div class="text">{e(run.output)}</div>'


def _inputs(chosen: list[tuple[PromptVersion, PromptRun]]) -> str:
    distinct = {tuple(sorted(r.inputs.items())) for _, r in chosen}
    if len(distinct) != 1:
        return "inputs differ between these runs"
    values = next(iter(distinct))
    return "inputs: " + (", ".join(f"{e(k)}={e(v)}" for k, v in values) if values else "none")
