"""What /usage says: a person's own spend and what is left, or (admins) the team's month."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from bot.billing.budget import Budget
from bot.billing.money import format_usd
from bot.wording import count
from storage.ledger_records import TEAM_SUBJECT, Limits, PeriodTotals, UsageRow

KIND_ORDER = ("chat", "image", "audio", "embedding", "search")


def by_kind(rows: Iterable[UsageRow]) -> str:
    """'chat $0.12 (14 calls), image $0.08 (2 images)' — or 'nothing yet'."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * 8)
    for row in rows:
        t = totals[row.kind]
        t[0] += row.cost_nanos
        t[1] += row.calls
        t[2] += row.images
        t[3] += row.audio_ms
        t[4] += row.estimated_nanos
        t[5] += row.searches
        t[6] += row.output_tokens
        t[7] += row.reasoning_tokens
    parts = []
    for kind in sorted(totals, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99):
        cost, calls, images, audio_ms, estimated, searches, output, reasoning = totals[kind]
        detail = {
            "image": count(images, "image"),
            "audio": f"{audio_ms / 60_000:.1f} min",
            "search": count(searches, "search", "searches"),
        }.get(kind, count(calls, "call"))
        if reasoning:  # a reasoning model's thinking, inside its output tokens and priced with them
            detail += f"; {count(output, 'output token')}, of which {reasoning:,} reasoning"
        if estimated:  # calls cut by a crash after they were sent: charged their worst case
            detail += f", {format_usd(estimated)} of it estimated"
        parts.append(f"{kind} {format_usd(cost)} ({detail})")
    return ", ".join(parts) or "nothing yet"


def total(rows: Iterable[UsageRow]) -> int:
    """Sum of cost in nano-dollars."""
    return sum(row.cost_nanos for row in rows)


@dataclass(frozen=True)
class TeamBudgetLeft:
    """What a member may know of the team's money: what is left of its monthly budget."""

    limit_nanos: int
    left_nanos: int

    def __str__(self) -> str:
        return f"Team budget left this month: {format_usd(self.left_nanos)} of {format_usd(self.limit_nanos)}."


def team_budget_left(limits: Limits, totals: PeriodTotals) -> TeamBudgetLeft | None:
    """The one team figure a member sees (in /usage and on the dashboard): what is left of the team's monthly
    budget, and nothing when none is set. The team's spend, by person or in all, is for admins (/usage team)."""
    if limits.team_monthly_nanos is None:
        return None
    return TeamBudgetLeft(limits.team_monthly_nanos, max(0, limits.team_monthly_nanos - totals.team_month_nanos))


async def personal_usage(budget: Budget, team_id: str, user_id: str) -> str:
    """The user's spend today and this month, by kind, and what remains of each limit."""
    now = budget.now()
    periods = budget.periods(now)
    month_rows = await budget.ledger.usage(team_id, f"{periods.month}-01", user_id=user_id)
    today_rows = [r for r in month_rows if r.day == periods.day]
    limits = await budget.limits_for(team_id, user_id)
    totals = await budget.ledger.totals(team_id, user_id, periods.day, periods.month)
    lines = [
        f"Today: {format_usd(total(today_rows))} — {by_kind(today_rows)}.",
        f"This month: {format_usd(total(month_rows))} — {by_kind(month_rows)}.",
    ]
    left = []
    if limits.user_daily_nanos is not None:
        remaining = max(0, limits.user_daily_nanos - totals.user_day_nanos)
        left.append(f"{format_usd(remaining)} of your {format_usd(limits.user_daily_nanos)} daily budget")
    if limits.user_daily_images is not None:
        left.append(
            f"{max(0, limits.user_daily_images - totals.user_day_images)} of {count(limits.user_daily_images, 'image')}"
        )
    if limits.user_daily_audio_ms is not None:
        remaining_min = max(0, limits.user_daily_audio_ms - totals.user_day_audio_ms) / 60_000
        left.append(f"{remaining_min:.1f} of {limits.user_daily_audio_ms / 60_000:g} audio minutes")
    if limits.user_daily_searches is not None:
        remaining_searches = max(0, limits.user_daily_searches - totals.user_day_searches)
        left.append(f"{remaining_searches} of {count(limits.user_daily_searches, 'search', 'searches')}")
    if left:
        lines.append(f"Left today: {'; '.join(left)} (resets {periods.day_resets_at:%H:%M %Z}).")
    team = team_budget_left(limits, totals)
    if team is not None:
        lines.append(str(team))
    if not left and team is None:
        lines.append("No budget limits are set.")
    return "\n".join(lines)


@dataclass(frozen=True)
class TeamMonth:
    """The team's spend in one quota month, per day and kind, with its monthly budget (None: unlimited)."""

    month: str  # YYYY-MM
    today: date
    days: list[date]  # every day of the month, today's and later ones included (they stay empty)
    per_kind: dict[str, list[int]]  # kind -> nano-dollars per day, aligned with `days`
    budget_nanos: int | None

    @property
    def total_nanos(self) -> int:
        """The month's spend so far."""
        return sum(sum(values) for values in self.per_kind.values())


async def team_usage(budget: Budget, team_id: str) -> tuple[str, TeamMonth]:
    """The team's month by user and by kind (the text), and the same month per day (the chart)."""
    now = budget.now()
    periods = budget.periods(now)
    today = date.fromisoformat(periods.day)
    first = date.fromisoformat(f"{periods.month}-01")
    days = [first + timedelta(days=n) for n in range(calendar.monthrange(first.year, first.month)[1])]
    rows = await budget.ledger.usage(team_id, first.isoformat(), days[-1].isoformat())
    limit = (await budget.limits_for(team_id, TEAM_SUBJECT)).team_monthly_nanos
    spent = total(rows)
    lines = [f"Team spend in {first:%B %Y} (to {today:%b} {today.day}): {format_usd(spent)} — {by_kind(rows)}."]
    if limit is not None:
        lines.append(f"Team budget: {format_usd(limit)} a month; {format_usd(max(0, limit - spent))} left.")
    per_user: dict[str, list[UsageRow]] = defaultdict(list)
    for row in rows:
        per_user[row.user_id].append(row)
    for user_id, user_rows in sorted(per_user.items(), key=lambda item: -total(item[1])):
        lines.append(f"  {user_id}: {format_usd(total(user_rows))} — {by_kind(user_rows)}")
    index = {d.isoformat(): i for i, d in enumerate(days)}
    per_kind: dict[str, list[int]] = {}
    for row in rows:
        if row.day in index:
            per_kind.setdefault(row.kind, [0] * len(days))[index[row.day]] += row.cost_nanos
    ordered = dict(sorted(per_kind.items(), key=lambda item: _kind_rank(item[0])))
    return "\n".join(lines), TeamMonth(periods.month, today, days, ordered, limit)


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


# Colour-blind-safe (Okabe-Ito) colours per kind of spend.
KIND_COLOURS = {"chat": "#0072B2", "image": "#E69F00", "audio": "#009E73", "embedding": "#CC79A7", "search": "#56B4E9"}


def team_month_png(month: TeamMonth, team_name: str = "") -> bytes:
    """The month as a PNG: spend per day stacked by kind ($), and the month to date against the budget.

    Blocking (matplotlib): call it off the event loop.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    dollars = FuncFormatter(lambda value, _: _dollar_tick(value))
    figure = Figure(figsize=(9, 6), dpi=110, layout="constrained")
    daily, cumulative = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    first = month.days[0]
    title = f"Team spend, {first:%B %Y}" + (f" — {team_name}" if team_name else "")
    spent = format_usd(month.total_nanos)
    of_budget = f" of {format_usd(month.budget_nanos)} budget" if month.budget_nanos is not None else ""
    figure.suptitle(_plain(f"{title}: {spent}{of_budget} to {_day_tick(month.today)}"))

    # Days are plotted by their day of the month (1…31) and labelled with their dates.
    x = [d.day for d in month.days]
    bottom = [0.0] * len(month.days)
    for kind, values in month.per_kind.items():
        usd = [v / 1e9 for v in values]
        daily.bar(x, usd, bottom=bottom, width=0.8, label=kind, color=KIND_COLOURS.get(kind, "#999999"))
        bottom = [b + u for b, u in zip(bottom, usd, strict=True)]
    daily.set_ylabel("spend per day")
    daily.yaxis.set_major_formatter(dollars)
    daily.set_ylim(bottom=0, top=max(bottom, default=0) * 1.15 or 1)
    if month.per_kind:
        daily.legend(loc="lower left", bbox_to_anchor=(0, 1), frameon=False, ncols=len(month.per_kind))
    else:
        daily.text(0.5, 0.5, "no spend yet this month", ha="center", va="center", transform=daily.transAxes)
    daily.grid(axis="y", alpha=0.3)

    elapsed = [d for d in month.days if d <= month.today]
    running, so_far = [], 0.0
    for i, _ in enumerate(elapsed):
        so_far += sum(values[i] for values in month.per_kind.values()) / 1e9
        running.append(so_far)
    cumulative.plot([d.day for d in elapsed], running, color="#333333", marker="o", markersize=3, label="month to date")
    top = max(running, default=0)
    if running and month.today < month.days[-1]:
        # The month's pace so far, carried to its last day: where the spend is heading.
        pace = running[-1] / len(elapsed) * len(month.days)
        cumulative.plot(
            [month.today.day, len(month.days)], [running[-1], pace], color="#333333", linestyle=":",
            label=_plain(f"on this pace: {format_usd(round(pace * 1e9))} by {_day_tick(month.days[-1])}"),
        )  # fmt: skip
        top = max(top, pace)
    if month.budget_nanos is not None:
        budget_usd = month.budget_nanos / 1e9
        cumulative.axhline(
            budget_usd, color="#D55E00", linestyle="--", label=_plain(f"budget {format_usd(month.budget_nanos)}")
        )
        top = max(top, budget_usd)
    cumulative.set_ylim(bottom=0, top=top * 1.15 or 1)
    cumulative.set_ylabel("month to date")
    cumulative.yaxis.set_major_formatter(dollars)
    cumulative.legend(loc="lower right", frameon=False)  # the running total climbs away from this corner
    cumulative.grid(axis="y", alpha=0.3)

    cumulative.set_xlim(0.3, len(x) + 0.7)
    today = month.today.day
    ticks = sorted({day for day in x if day % 7 == 1 and abs(day - today) > 2} | {today})
    cumulative.set_xticks(ticks, [_day_tick(first.replace(day=day)) for day in ticks])
    cumulative.set_xticks(x, minor=True)
    for axes in (daily, cumulative):
        axes.axvline(month.today.day, color="#999999", linewidth=0.8, linestyle=":")
        axes.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _plain(text: str) -> str:
    """Text for matplotlib, which reads what stands between two $ as math: every $ escaped."""
    return text.replace("$", r"\$")


def _day_tick(day: date) -> str:
    """Date axis labels: "Dec 1"."""
    return f"{day:%b} {day.day}"


def _dollar_tick(value: float) -> str:
    """$ axis labels: $0, $0.0025, $0.25, $1.50, $12, $1,200."""
    if value == 0:
        return "$0"
    if abs(value) >= 10:
        return f"${value:,.0f}"
    if abs(value) >= 0.01:
        return f"${value:.2f}"
    return f"${value:.4f}".rstrip("0")
