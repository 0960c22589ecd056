"""The dashboard's budgets page: the limits in force, and admins' changes through the same path as /quota."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.billing.budget import Budget, resolve_limits
from bot.billing.quota_admin import QuotaAdmin, describe
from bot.billing.usage_report import personal_usage
from bot.errors import BadCommand, NotAllowed
from bot.settings import Settings
from storage.ledger_records import ALL_USERS, LimitChange, LimitOverride, Limits
from storage.signins import WebSession

# The form's choices, in /quota's own words.
SCOPES = ("user", "users", "team")
USER_METRICS = ("daily", "images", "audio", "searches")
TEAM_METRICS = ("monthly",)


@dataclass(frozen=True)
class LimitsInForce:
    """What the budgets page shows."""

    defaults: Limits  # from the settings
    every_user: Limits  # what applies to a user with no limit of their own
    team_monthly_nanos: int | None
    team_month_nanos: int
    month: str
    overrides: list[LimitOverride]
    changes: list[LimitChange]
    mine: Limits  # the viewer's own limits


@dataclass(frozen=True)
class MyLimits:
    """What a member's budgets page shows: their own limits and what /usage tells them, nothing of others."""

    mine: Limits
    usage: str  # /usage's answer, word for word


async def limits_in_force(budget: Budget, settings: Settings, session: WebSession) -> LimitsInForce:
    """Defaults, admins' overrides, the effective every-user and team limits, and the audit list (admins:
    the same as /quota show)."""
    grant = session.grant
    if not grant.is_admin:
        raise NotAllowed("Only admins see everyone's limits and their changes; /usage shows your own.")
    overrides = await budget.ledger.limit_overrides(grant.team_id)
    periods = budget.periods()
    totals = await budget.ledger.totals(grant.team_id, grant.user_id, periods.day, periods.month)
    every_user = resolve_limits(settings, overrides, ALL_USERS)  # a user with no limit of their own
    mine = resolve_limits(settings, overrides, grant.user_id)
    return LimitsInForce(
        defaults=resolve_limits(settings, [], ""),
        every_user=every_user,
        team_monthly_nanos=mine.team_monthly_nanos,
        team_month_nanos=totals.team_month_nanos,
        month=periods.month,
        overrides=overrides,
        changes=await budget.ledger.limit_changes(grant.team_id, limit=50),
        mine=mine,
    )


async def my_limits(budget: Budget, session: WebSession) -> MyLimits:
    """A person's own limits and their /usage answer."""
    grant = session.grant
    mine = await budget.limits_for(grant.team_id, grant.user_id)
    return MyLimits(mine, await personal_usage(budget, grant.team_id, grant.user_id))


def quota_words(form: Mapping[str, str]) -> list[str]:
    """The budgets form as /quota's words: `set user U daily 0.50`, `set team monthly 50`, `reset users`."""
    action = form.get("action", "set")
    scope = form.get("scope", "")
    if scope not in SCOPES:
        raise BadCommand("Choose whom the limit is for: one user, every user, or the team.")
    subject = [scope]
    if scope == "user":
        user = form.get("user", "").strip()
        if not user or len(user) > 100 or any(c.isspace() for c in user):
            raise BadCommand("Give the user's id (as /usage team shows it).")
        subject.append(user)
    if action == "reset":
        return ["reset", *subject]
    if action != "set":
        raise BadCommand("Unknown action.")
    metric = form.get("metric", "")
    if metric not in (TEAM_METRICS if scope == "team" else USER_METRICS):
        allowed = ", ".join(TEAM_METRICS if scope == "team" else USER_METRICS)
        raise BadCommand(f"Choose a limit: {allowed}.")
    amount = form.get("amount", "").strip()
    if not amount:
        raise BadCommand("Give an amount, or none for unlimited.")
    return ["set", *subject, metric, amount]


async def change_limit(admin: QuotaAdmin, budget: Budget, session: WebSession, form: Mapping[str, str]) -> str:
    """Apply an admin's form exactly as /quota would, recorded as changed by them; the confirmation."""
    grant = session.grant
    if not grant.is_admin:
        raise NotAllowed("Only admins change budgets.")
    return await admin.apply(grant.team_id, quota_words(form), grant.user_id, budget.now())


def show(metric: str, value: int | None) -> str:
    """A limit for people."""
    return describe(metric, value)
