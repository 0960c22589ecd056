"""The dashboard's spend page: the same ledger rows as `python -m bot usage`, added up for people."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from bot.billing.budget import Budget
from bot.billing.usage_report import KIND_ORDER, TeamBudgetLeft, team_budget_left
from bot.errors import BadCommand
from storage.ledger_records import UsageRow
from storage.signins import WebSession


@dataclass(frozen=True)
class KindTotal:
    """One kind's spend: cost and its units."""

    kind: str
    cost_nanos: int
    calls: int
    images: int
    audio_ms: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class SpendReport:
    """Spend of a team (an admin's view) or of one person (a member's) between two days."""

    team_id: str
    user_id: str | None  # None: the whole team
    since: date
    until: date
    rows: list[UsageRow]
    by_kind: list[KindTotal]
    by_user: list[tuple[str, int]]  # most first
    by_day: list[tuple[date, dict[str, int]]]  # every day of the period, cost per kind
    kinds: list[str]
    team_limit_nanos: int | None  # an admin's view: the team's monthly budget (None: unlimited, or a member's view)
    team_month_nanos: int  # an admin's view: the team's current month (settled and reserved), as budgets count it
    month: str
    team_left: TeamBudgetLeft | None  # all a member sees of the team, as /usage shows it

    @property
    def total_nanos(self) -> int:
        """The period's total."""
        return sum(r.cost_nanos for r in self.rows)


def parse_day(text: str | None, name: str) -> date | None:
    """A YYYY-MM-DD query value, or a clear error."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadCommand(f"{name}={text!r} is not a day like 2026-12-01.") from None


async def spend_report(budget: Budget, session: WebSession, since: date | None, until: date | None) -> SpendReport:
    """Rows exactly as `python -m bot usage --team T [--user U] --since … --until …` reads them."""
    grant = session.grant
    periods = budget.periods()
    today = date.fromisoformat(periods.day)
    first = since or date.fromisoformat(f"{periods.month}-01")
    last = until or max(today, first)
    if last < first:
        raise BadCommand("The period ends before it starts.")
    if (last - first).days > 366:
        raise BadCommand("Pick a period of at most a year.")
    user = None if grant.is_admin else grant.user_id
    rows = await budget.ledger.usage(grant.team_id, first.isoformat(), until.isoformat() if until else None, user)
    kinds: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    users: dict[str, int] = defaultdict(int)
    days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        k = kinds[row.kind]
        for i, value in enumerate(
            (row.cost_nanos, row.calls, row.images, row.audio_ms, row.input_tokens, row.output_tokens)
        ):
            k[i] += value
        users[row.user_id] += row.cost_nanos
        days[row.day][row.kind] += row.cost_nanos
    order = sorted(kinds, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else 99, k))
    by_day = [
        (first + timedelta(days=n), dict(days.get((first + timedelta(days=n)).isoformat(), {})))
        for n in range((last - first).days + 1)
    ]
    limits = await budget.limits_for(grant.team_id, grant.user_id)
    totals = await budget.ledger.totals(grant.team_id, grant.user_id, periods.day, periods.month)
    team_left = team_budget_left(limits, totals)
    return SpendReport(
        team_id=grant.team_id,
        user_id=user,
        since=first,
        until=last,
        rows=rows,
        by_kind=[KindTotal(kind, *kinds[kind]) for kind in order],
        by_user=sorted(users.items(), key=lambda item: (-item[1], item[0])),
        by_day=by_day,
        kinds=order,
        team_limit_nanos=limits.team_monthly_nanos if grant.is_admin else None,
        team_month_nanos=totals.team_month_nanos if grant.is_admin else 0,
        month=periods.month,
        team_left=team_left,
    )
