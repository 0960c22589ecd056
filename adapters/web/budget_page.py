"""The budgets page: the limits in force for everyone, and a form for admins (the same change as /quota)."""

from __future__ import annotations

from aiohttp import web

from adapters.web.layout import csrf_field, e, notice, table
from adapters.web.visit import Visit, posted_form
from bot.billing.money import format_usd
from bot.billing.quota_admin import describe, format_change, subject_name
from bot.dashboard.limits import LimitsInForce, MyLimits, change_limit, limits_in_force, my_limits
from bot.errors import NotAllowed, UserFacingError

_NAMES = {"daily_usd": "daily budget", "monthly_usd": "monthly budget", "daily_images": "images per day",
          "daily_audio": "audio per day", "daily_searches": "searches per day"}  # fmt: skip


async def budgets(request: web.Request, visit: Visit) -> web.StreamResponse:
    """The limits; admins also get the form."""
    return await _render(visit, "")


async def change(request: web.Request, visit: Visit) -> web.StreamResponse:
    """An admin's change, applied as /quota applies it; the page again with what happened."""
    if not visit.session.grant.is_admin:
        raise NotAllowed("Only admins change budgets; members can see them.")
    form = await posted_form(request, visit.engine)
    try:
        done = await change_limit(visit.engine.quota_admin, visit.engine.budget, visit.session, form)
    except UserFacingError as exc:
        return await _render(visit, notice(exc.message, "error"), status=400)
    return await _render(visit, notice(done))


async def _render(visit: Visit, message: str, *, status: int = 200) -> web.Response:
    if not visit.session.grant.is_admin:
        body = message + _mine(await my_limits(visit.engine.budget, visit.session))
        return visit.page("Budgets", body, current="/dashboard/budgets", status=status)
    view = await limits_in_force(visit.engine.budget, visit.engine.settings, visit.session)
    body = message + _in_force(view) + _form(visit.csrf)
    body += "<h2>Set by admins</h2>" + (
        table(
            ["for", "limit", "value"],
            [[e(subject_name(o.subject)), e(_NAMES[o.metric]), e(describe(o.metric, o.value))] for o in view.overrides],
        )
        if view.overrides
        else '<p class="muted">No limits set by admins: the defaults apply.</p>'
    )
    body += "<h2>Changes</h2>" + (
        '<ul class="changes">' + "".join(f"<li>{e(format_change(c))}</li>" for c in view.changes) + "</ul>"
        if view.changes
        else '<p class="muted">No changes recorded yet.</p>'
    )
    body += '<p class="muted">The same list as <code>/quota show</code> in the chat.</p>'
    return visit.page("Budgets", body, current="/dashboard/budgets", status=status)


def _in_force(view: LimitsInForce) -> str:
    d, every, mine = view.defaults, view.every_user, view.mine
    rows = [
        ["per user per day", e(describe("daily_usd", d.user_daily_nanos)),
         e(describe("daily_usd", every.user_daily_nanos)), e(describe("daily_usd", mine.user_daily_nanos))],
        ["images per user per day", e(describe("daily_images", d.user_daily_images)),
         e(describe("daily_images", every.user_daily_images)), e(describe("daily_images", mine.user_daily_images))],
        ["audio per user per day", e(describe("daily_audio", d.user_daily_audio_ms)),
         e(describe("daily_audio", every.user_daily_audio_ms)), e(describe("daily_audio", mine.user_daily_audio_ms))],
        ["searches per user per day", e(describe("daily_searches", d.user_daily_searches)),
         e(describe("daily_searches", every.user_daily_searches)),
         e(describe("daily_searches", mine.user_daily_searches))],
        ["team per month", e(describe("monthly_usd", d.team_monthly_nanos)),
         e(describe("monthly_usd", view.team_monthly_nanos)), e(describe("monthly_usd", view.team_monthly_nanos))],
    ]  # fmt: skip
    spent = f"Team spend in {view.month}: {format_usd(view.team_month_nanos)}"
    if view.team_monthly_nanos is not None:
        spent += f" of {format_usd(view.team_monthly_nanos)}"
    return (
        "<h2>Limits in force</h2>"
        + table(["limit", "default (settings)", "every user now", "you"], rows, cls="limits")
        + f'<p class="muted">{e(spent)}. A user-specific limit wins over the every-user one.</p>'
    )


def _form(csrf: str) -> str:
    return (
        "<h2>Change a limit</h2><section>"
        f'<form method="post" action="/dashboard/budgets" class="limit-form">{csrf_field(csrf)}'
        '<label>action<select name="action"><option value="set">set</option>'
        '<option value="reset">reset to defaults</option></select></label>'
        '<label>for<select name="scope"><option value="user">one user</option>'
        '<option value="users">every user</option><option value="team">the team</option></select></label>'
        '<label>user id (for one user)<input name="user" size="14" autocomplete="off"></label>'
        '<label>limit<select name="metric"><option value="daily">USD per day</option>'
        '<option value="images">images per day</option><option value="audio">audio minutes per day</option>'
        '<option value="searches">web searches per day</option>'
        '<option value="monthly">team USD per month</option></select></label>'
        '<label>amount (none = unlimited)<input name="amount" size="10" placeholder="0.50"></label>'
        '<button type="submit">Apply</button></form>'
        '<p class="muted">Recorded as changed by you, like <code>/quota set …</code>.</p></section>'
    )


def _mine(view: MyLimits) -> str:
    """A member's page: their own limits and what /usage tells them (the same rule as the chat)."""
    mine = view.mine
    rows = [
        ["per day", e(describe("daily_usd", mine.user_daily_nanos))],
        ["images per day", e(describe("daily_images", mine.user_daily_images))],
        ["audio per day", e(describe("daily_audio", mine.user_daily_audio_ms))],
        ["searches per day", e(describe("daily_searches", mine.user_daily_searches))],
    ]
    return (
        "<h2>Your limits</h2>"
        + table(["limit", "you"], rows, cls="limits")
        + "".join(f"<p>{e(line)}</p>" for line in view.usage.splitlines())
        + '<p class="muted">The same as <code>/usage</code> in the chat. Admins change limits here or with '
        "/quota.</p>"
    )
