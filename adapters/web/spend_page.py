"""The spend page and its CSV: an admin sees the team, a member sees their own spend."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from adapters.web.charts import legend, stacked_days
from adapters.web.layout import SECURITY_HEADERS, e, table
from adapters.web.visit import Visit
from bot.admin_cli import render
from bot.billing.money import format_usd
from bot.dashboard.spend import SpendReport, parse_day, spend_report


async def _report(request: web.Request, visit: Visit) -> SpendReport:
    since = parse_day(request.query.get("since"), "since")
    until = parse_day(request.query.get("until"), "until")
    return await spend_report(visit.engine.budget, visit.session, since, until)


async def spend(request: web.Request, visit: Visit) -> web.StreamResponse:
    """This month (or ?since=&until=): by day stacked by kind, by user, by kind, and the team budget."""
    report = await _report(request, visit)
    whose = "the team's" if report.user_id is None else "your"
    period = f"{report.since:%b %d, %Y} – {report.until:%b %d, %Y}"
    figures = [("Spent " + ("by the team" if report.user_id is None else "by you"), format_usd(report.total_nanos))]
    figures.append(("Calls", f"{sum(r.calls for r in report.rows):,}"))
    if report.user_id is not None:  # a member: what /usage shows of the team, and only with a team budget
        if (team := report.team_left) is not None:
            of = f"{format_usd(team.left_nanos)} of {format_usd(team.limit_nanos)}"
            figures.append((f"Team budget left {report.month}", of))
    elif report.team_limit_nanos is not None:
        figures.append((f"Team budget {report.month}", format_usd(report.team_limit_nanos)))
        left = max(0, report.team_limit_nanos - report.team_month_nanos)
        figures.append((f"Team budget left {report.month}", format_usd(left)))
    else:
        figures.append((f"Team budget {report.month}", "unlimited"))
    cards = "".join(
        f'<div class="figure"><div class="label">{e(label)}</div><div class="value">{e(value)}</div></div>'
        for label, value in figures
    )
    meter = ""
    if report.team_limit_nanos:
        meter = (
            f'<p>Team budget used in {e(report.month)}: <meter min="0" max="{report.team_limit_nanos}" '
            f'value="{min(report.team_month_nanos, report.team_limit_nanos)}" '
            f'high="{report.team_limit_nanos * 8 // 10}"></meter> {e(format_usd(report.team_month_nanos))} of '
            f"{e(format_usd(report.team_limit_nanos))}</p>"
        )
    kinds = table(
        ["kind", "cost", "calls", "input tokens", "output tokens", "images", "audio minutes"],
        [
            [e(k.kind), e(format_usd(k.cost_nanos)), f"{k.calls:,}", f"{k.input_tokens:,}", f"{k.output_tokens:,}",
             f"{k.images:,}", f"{k.audio_ms / 60_000:.1f}"]
            for k in report.by_kind
        ],
        numeric={1, 2, 3, 4, 5, 6},
    )  # fmt: skip
    users = table(
        ["user", "cost", "share"],
        [
            [e(user), e(format_usd(cost)), f"{cost * 100 / report.total_nanos:.0f}%" if report.total_nanos else "–"]
            for user, cost in report.by_user
        ],
        numeric={1, 2},
    )
    query = f"since={report.since.isoformat()}&until={report.until.isoformat()}"
    previous_end = report.since - timedelta(days=1)
    previous = f"since={previous_end.replace(day=1).isoformat()}&until={previous_end.isoformat()}"
    body = (
        f'<p class="muted">{e(period)} · {whose} spend, settled and reserved calls, days in '
        f"{e(visit.engine.settings.quota_timezone)} · the same figures as <code>python -m bot usage</code> · "
        f'<a href="/dashboard?{previous}">previous month</a> · <a href="/dashboard">this month</a> · '
        f'<a href="/dashboard/spend.csv?{query}" download>CSV</a></p>'
        f'<div class="figures">{cards}</div>{meter}'
        f"<h2>By day</h2><section>{legend(report.kinds)}"
        f"{stacked_days(report.by_day, report.kinds, f'Spend per day, {period}')}</section>"
        f"<h2>By kind</h2>{kinds if report.by_kind else '<p class=muted>Nothing spent in this period.</p>'}"
    )
    if report.user_id is None:
        body += f"<h2>By user</h2>{users if report.by_user else '<p class=muted>Nobody yet.</p>'}"
    return visit.page("Spend", body, current="/dashboard")


async def spend_csv(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The period's rows as CSV, byte for byte what `python -m bot usage --format csv` prints."""
    report = await _report(request, visit)
    name = f"teambot-spend-{report.since.isoformat()}-{report.until.isoformat()}.csv"
    return web.Response(
        text=render(report.rows, "csv"),
        content_type="text/csv",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )
