"""What /usage says: a person's own spend and what is left, or (admins) the team's month."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from bot.billing.budget import Budget
from bot.billing.money import format_usd
from storage.ledger_records import UsageRow

KIND_ORDER = ("chat", "image", "audio", "embedding")


def by_kind(rows: Iterable[UsageRow]) -> str:
    """'chat $0.12 (14 calls), image $0.08 (2 images)' — or 'nothing yet'."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for row in rows:
        t = totals[row.kind]
        t[0] += row.cost_nanos
        t[1] += row.calls
        t[2] += row.images
        t[3] += row.audio_ms
        t[4] += row.estimated_nanos
    parts = []
    for kind in sorted(totals, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99):
        cost, calls, images, audio_ms, estimated = totals[kind]
        detail = {"image": f"{images} images", "audio": f"{audio_ms / 60_000:.1f} min"}.get(kind, f"{calls} calls")
        if estimated:  # calls cut by a crash after they were sent: charged their worst case
            detail += f", {format_usd(estimated)} of it estimated"
        parts.append(f"{kind} {format_usd(cost)} ({detail})")
    return ", ".join(parts) or "nothing yet"


def total(rows: Iterable[UsageRow]) -> int:
    """Sum of cost in nano-dollars."""
    return sum(row.cost_nanos for row in rows)


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
        left.append(f"{max(0, limits.user_daily_images - totals.user_day_images)} of {limits.user_daily_images} images")
    if limits.user_daily_audio_ms is not None:
        remaining_min = max(0, limits.user_daily_audio_ms - totals.user_day_audio_ms) / 60_000
        left.append(f"{remaining_min:.1f} of {limits.user_daily_audio_ms / 60_000:g} audio minutes")
    if left:
        lines.append(f"Left today: {'; '.join(left)} (resets {periods.day_resets_at:%H:%M %Z}).")
    if limits.team_monthly_nanos is not None:
        limit = limits.team_monthly_nanos
        remaining = max(0, limit - totals.team_month_nanos)
        lines.append(f"Team budget left this month: {format_usd(remaining)} of {format_usd(limit)}.")
    if not left and limits.team_monthly_nanos is None:
        lines.append("No budget limits are set.")
    return "\n".join(lines)


async def team_usage(budget: Budget, team_id: str) -> tuple[str, list[tuple[date, int]]]:
    """The team's month by user and by kind, and its daily spend over the last 30 days."""
    now = budget.now()
    periods = budget.periods(now)
    today = date.fromisoformat(periods.day)
    first_day = min(today - timedelta(days=29), date.fromisoformat(f"{periods.month}-01"))
    rows = await budget.ledger.usage(team_id, first_day.isoformat())
    month_rows = [r for r in rows if r.day.startswith(periods.month)]
    lines = [f"Team spend in {periods.month}: {format_usd(total(month_rows))} — {by_kind(month_rows)}."]
    per_user: dict[str, list[UsageRow]] = defaultdict(list)
    for row in month_rows:
        per_user[row.user_id].append(row)
    for user_id, user_rows in sorted(per_user.items(), key=lambda item: -total(item[1])):
        lines.append(f"  {user_id}: {format_usd(total(user_rows))} — {by_kind(user_rows)}")
    daily: dict[str, int] = defaultdict(int)
    for row in rows:
        daily[row.day] += row.cost_nanos
    series = [(d, daily.get(d.isoformat(), 0)) for d in (today - timedelta(days=n) for n in range(29, -1, -1))]
    return "\n".join(lines), series


def daily_chart_png(series: list[tuple[date, int]], title: str) -> bytes:
    """A bar chart of daily spend (USD) as PNG. Blocking: call it off the event loop."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), dpi=100)
    axes = figure.subplots()
    labels = [f"{d:%b %d}" for d, _ in series]
    axes.bar(labels, [nanos / 1e9 for _, nanos in series], color="#4a7bd0")
    axes.set_title(title)
    axes.set_ylabel("USD")
    axes.set_xticks(labels[::5])
    axes.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
