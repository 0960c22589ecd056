"""Reading and changing limits, shared by the /quota command and the `python -m bot quota` CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from bot.billing.budget import Budget
from bot.billing.money import format_usd, usd_to_nanos
from bot.errors import BadCommand
from bot.settings import Settings
from bot.wording import count, sentence
from storage.ledger_records import ALL_USERS, TEAM_SUBJECT, LimitChange, Metric

QUOTA_USAGE = (
    "/quota [show] | /quota set user <id> daily|images|audio|searches <amount|none> | "
    "/quota set users daily|images|audio|searches <amount|none> | /quota set team monthly <usd|none> | "
    "/quota reset user <id>|users|team"
)

# (scope word, limit word) -> metric. "users" = every user of the team.
_METRICS: dict[tuple[str, str], Metric] = {
    ("user", "daily"): "daily_usd",
    ("user", "images"): "daily_images",
    ("user", "audio"): "daily_audio",
    ("user", "searches"): "daily_searches",
    ("team", "monthly"): "monthly_usd",
}
_UNLIMITED = ("none", "unlimited", "off")
# The largest limit each kind takes, in the unit people type: far above any real budget and far below
# what a 64-bit column holds (a $99,999,999,999 limit is 10^20 nano-dollars and would overflow it).
MAX_LIMITS: dict[Metric, tuple[Decimal, str]] = {
    "daily_usd": (Decimal(1_000_000), "$1,000,000"),
    "monthly_usd": (Decimal(1_000_000), "$1,000,000"),
    "daily_images": (Decimal(1_000_000), "1,000,000 images"),
    "daily_audio": (Decimal(1_000_000), "1,000,000 minutes"),
    "daily_searches": (Decimal(1_000_000), "1,000,000 searches"),
}
# The limits counted in whole units: each unit's singular and plural.
_COUNTED: dict[str, tuple[str, str]] = {"daily_images": ("image", "images"), "daily_searches": ("search", "searches")}


@dataclass(frozen=True)
class QuotaChange:
    """A parsed `set`: who it applies to, which limit, and the stored value (None = unlimited)."""

    subject: str
    metric: Metric
    value: int | None


def parse_set(args: list[str]) -> QuotaChange:
    """Parse the words after `set`: `user <id> daily 0.50`, `users images 10`, `team monthly 50`."""
    if len(args) == 4 and args[0] == "user":
        subject, scope, word, amount = args[1], "user", args[2], args[3]
    elif len(args) == 3 and args[0] in ("users", "team"):
        subject = ALL_USERS if args[0] == "users" else TEAM_SUBJECT
        scope, word, amount = ("user" if args[0] == "users" else "team"), args[1], args[2]
    else:
        raise BadCommand(f"Not a quota change: {' '.join(args) or '(nothing)'}.\nUsage: {QUOTA_USAGE}")
    metric = _METRICS.get((scope, word.lower()))
    if metric is None:
        allowed = "daily, images, audio, searches" if scope == "user" else "monthly"
        raise BadCommand(f"Unknown {scope} limit {word!r}: use {allowed}.\nUsage: {QUOTA_USAGE}")
    return QuotaChange(subject, metric, parse_amount(metric, amount))


def parse_amount(metric: Metric, text: str) -> int | None:
    """The stored value of an amount: nano-dollars, a count of images or searches, or milliseconds of audio; at most
    MAX_LIMITS, checked before converting (`1e999999999` must not become a billion-digit integer)."""
    if text.lower() in _UNLIMITED:
        return None
    kind = {"daily_audio": "a number of minutes"}.get(metric, "an amount in dollars like 0.50")
    if metric in _COUNTED:
        kind = f"a whole number of {_COUNTED[metric][1]}"
    try:
        amount = Decimal(text.removeprefix("$") if metric.endswith("_usd") else text)
    except InvalidOperation:
        amount = Decimal("NaN")
    whole = amount.is_finite() and amount == amount.to_integral_value()
    if not amount.is_finite() or amount < 0 or (metric in _COUNTED and not whole):
        raise BadCommand(f"{text[:40]!r} is not {kind} (or 'none' for unlimited).")
    ceiling, shown = MAX_LIMITS[metric]
    if amount > ceiling:
        raise BadCommand(f"{text[:40]} is more than the largest limit, {shown}; use 'none' for no limit.")
    if metric in _COUNTED:
        return int(amount)
    if metric == "daily_audio":
        return usd_to_nanos(amount) * 60 // 1_000_000  # minutes -> ms, exact for decimals
    return usd_to_nanos(amount)


def describe(metric: str, value: int | None) -> str:
    """A stored limit value for people: $0.50, 10 images, 30 min, unlimited."""
    if value is None:
        return "unlimited"
    if metric in ("daily_usd", "monthly_usd"):
        return format_usd(value)
    if metric in _COUNTED:
        return count(value, *_COUNTED[metric])
    return f"{value / 60_000:g} min"


def subject_name(subject: str) -> str:
    """How a quota subject reads in messages."""
    return {ALL_USERS: "every user", TEAM_SUBJECT: "the team"}.get(subject, f"user {subject}")


class QuotaAdmin:
    """Show and change a team's limits, recording who changed what."""

    def __init__(self, budget: Budget, settings: Settings) -> None:
        self._budget = budget
        self._settings = settings

    async def apply(self, team_id: str, args: list[str], changed_by: str, now: datetime) -> str:
        """Run `set …` or `reset …` words; returns the confirmation to show."""
        if not args or args[0] not in ("set", "reset"):
            raise BadCommand(f"Usage: {QUOTA_USAGE}")
        ledger = self._budget.ledger
        if args[0] == "set":
            change = parse_set(args[1:])
            old = await ledger.set_limit(
                team_id, change.subject, change.metric, change.value, changed_by=changed_by, now=now
            )
            before = describe(change.metric, old.value) if old else "default"
            after = describe(change.metric, change.value)
            return f"{sentence(subject_name(change.subject))}: {_METRIC_NAMES[change.metric]} {before} → {after}."
        rest = args[1:]
        if rest[:1] == ["user"] and len(rest) == 2:
            subject = rest[1]
        elif rest in (["users"], ["team"]):
            subject = ALL_USERS if rest == ["users"] else TEAM_SUBJECT
        else:
            raise BadCommand(f"Reset whom? Usage: {QUOTA_USAGE}")
        cleared = await ledger.clear_limits(team_id, subject, changed_by=changed_by, now=now)
        if not cleared:
            return f"{sentence(subject_name(subject))} had no limits of its own; the defaults already apply."
        return f"{sentence(subject_name(subject))}: {count(cleared, 'limit')} back to the defaults."

    async def show(self, team_id: str) -> str:
        """Defaults, the team's overrides, and the latest changes."""
        s = self._settings
        defaults = resolve_defaults_text(s)
        lines = [f"Defaults (settings, days and months in {s.quota_timezone}): {defaults}"]
        overrides = await self._budget.ledger.limit_overrides(team_id)
        if overrides:
            lines.append("Set by admins:")
            for o in overrides:
                lines.append(f"  {subject_name(o.subject)}: {_METRIC_NAMES[o.metric]} {describe(o.metric, o.value)}")
        else:
            lines.append("No limits set by admins.")
        changes = await self._budget.ledger.limit_changes(team_id, limit=5)
        if changes:
            lines.append("Latest changes:")
            lines.extend(f"  {format_change(c)}" for c in changes)
        return "\n".join(lines)


_METRIC_NAMES = {
    "daily_usd": "daily budget",
    "monthly_usd": "monthly budget",
    "daily_images": "images per day",
    "daily_audio": "audio per day",
    "daily_searches": "searches per day",
}


def resolve_defaults_text(s: Settings) -> str:
    """The settings' default limits, in words."""

    def usd(v: object) -> str:
        return "unlimited" if v is None else format_usd(usd_to_nanos(str(v)))

    audio = "unlimited" if s.quota_user_daily_audio_minutes is None else f"{s.quota_user_daily_audio_minutes:g} min"
    images = "unlimited" if s.quota_user_daily_images is None else str(s.quota_user_daily_images)
    searches = "unlimited" if s.quota_user_daily_searches is None else str(s.quota_user_daily_searches)
    return (
        f"per user per day {usd(s.quota_user_daily_usd)}, images {images}, audio {audio}, searches {searches}; "
        f"team per month {usd(s.quota_team_monthly_usd)}."
    )


def format_change(change: LimitChange) -> str:
    """One audit line: when, who, what, old → new."""
    old = describe(change.metric, change.old_value) if change.old_set else "default"
    new = describe(change.metric, change.new_value) if change.new_set else "default"
    name = _METRIC_NAMES.get(change.metric, change.metric)
    who = subject_name(change.subject)
    return f"{change.changed_at:%Y-%m-%d %H:%M} {change.changed_by}: {who} {name} {old} → {new}"
