"""Records of the usage ledger and quota limits that cross the Store boundary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["chat", "image", "audio", "embedding", "search"]
Metric = Literal["daily_usd", "monthly_usd", "daily_images", "daily_audio", "daily_searches"]
TEAM_SUBJECT = ""  # quota_limits.subject of the team itself
ALL_USERS = "*"  # quota_limits.subject of "every user of the team"


@dataclass(frozen=True)
class Units:
    """What a call consumed (or may consume, for a reservation)."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    audio_ms: int = 0
    searches: int = 0
    reasoning_tokens: int = 0  # of output_tokens: priced with them, kept apart so /usage can show them


@dataclass(frozen=True)
class Charge:
    """Who a call is charged to, and what it is."""

    platform: str
    team_id: str
    user_id: str
    channel_id: str
    kind: Kind
    model: str


@dataclass(frozen=True)
class Limits:
    """Effective limits for one user in one team; None means unlimited."""

    user_daily_nanos: int | None = None
    team_monthly_nanos: int | None = None
    user_daily_images: int | None = None
    user_daily_audio_ms: int | None = None
    user_daily_searches: int | None = None


@dataclass(frozen=True)
class ReservationRequest:
    """One atomic reservation: refused as a whole if any limit would be crossed."""

    charge: Charge
    units: Units
    cost_nanos: int
    user_day: str
    team_month: str
    defaults: Limits  # the settings' limits; an admin's overrides (quota_limits) take precedence, see `effective`
    now: datetime
    expires_at: datetime
    holder: str
    # When the request goes to the provider: set at reservation by every model call (its model slot is
    # already held), so a crash from then on is charged the worst case. None: not sent (released on a crash).
    sent_at: datetime | None = None


@dataclass(frozen=True)
class PeriodTotals:
    """Spend so far (reserved + settled) for a user's day and the team's month."""

    user_day_nanos: int = 0
    user_day_images: int = 0
    user_day_audio_ms: int = 0
    team_month_nanos: int = 0
    user_day_searches: int = 0


def fits(request: ReservationRequest, limits: Limits, totals: PeriodTotals) -> bool:
    """Whether the request fits every limit given these totals: the rule the reserving statement checks."""
    units, cost = request.units, request.cost_nanos
    return all(
        limit is None or used + more <= limit
        for used, more, limit in (
            (totals.user_day_nanos, cost, limits.user_daily_nanos),
            (totals.team_month_nanos, cost, limits.team_monthly_nanos),
            (totals.user_day_images, units.images, limits.user_daily_images),
            (totals.user_day_audio_ms, units.audio_ms, limits.user_daily_audio_ms),
            (totals.user_day_searches, units.searches, limits.user_daily_searches),
        )
    )


@dataclass
class InFlightLease:
    """One running request of a person, counted against MAX_USER_IN_FLIGHT. `released` once its release
    went with the turn's last write (`Store.add_reply`), so the request's end has nothing more to do."""

    id: int
    released: bool = False


@dataclass(frozen=True)
class Settlement:
    """The real cost of a reserved call, to record (with what the caller keeps of it, in one transaction)."""

    reservation_id: int
    units: Units
    cost_nanos: int
    at: datetime


@dataclass(frozen=True)
class Refusal:
    """Why a reservation was refused: the limits in force and the totals that decision saw."""

    limits: Limits
    totals: PeriodTotals


def effective(defaults: Limits, overrides: Sequence[LimitOverride], user_id: str) -> Limits:
    """Per metric: the user's override, else the team's every-user ('*') one, else the default.

    An override whose value is None makes that metric unlimited. (The reserving statement applies the
    same precedence in SQL: `_limit` in storage/sql/ledger.py.)
    """
    by_key = {(o.subject, o.metric): o for o in overrides}

    def pick(metric: Metric, subjects: tuple[str, ...], default: int | None) -> int | None:
        for subject in subjects:
            override = by_key.get((subject, metric))
            if override is not None:
                return override.value
        return default

    user = (user_id, ALL_USERS)
    return Limits(
        user_daily_nanos=pick("daily_usd", user, defaults.user_daily_nanos),
        team_monthly_nanos=pick("monthly_usd", (TEAM_SUBJECT,), defaults.team_monthly_nanos),
        user_daily_images=pick("daily_images", user, defaults.user_daily_images),
        user_daily_audio_ms=pick("daily_audio", user, defaults.user_daily_audio_ms),
        user_daily_searches=pick("daily_searches", user, defaults.user_daily_searches),
    )


@dataclass(frozen=True)
class Recovered:
    """Reservations whose holder stopped renewing or died: `estimated` had sent their request and keep
    their worst case (marked estimated); `released` never had and cost nothing."""

    released: int = 0
    estimated: int = 0

    def __add__(self, other: Recovered) -> Recovered:
        return Recovered(self.released + other.released, self.estimated + other.estimated)

    @property
    def total(self) -> int:
        """How many reservations were recovered."""
        return self.released + self.estimated


@dataclass(frozen=True)
class LimitOverride:
    """An admin-set limit. value None with the row present means explicitly unlimited."""

    subject: str
    metric: Metric
    value: int | None


@dataclass(frozen=True)
class UsageRow:
    """An aggregate of settled/reserved spend for reports: grouped by user, kind and/or day."""

    user_id: str
    kind: str
    day: str
    calls: int
    cost_nanos: int
    input_tokens: int
    output_tokens: int
    images: int
    audio_ms: int
    searches: int = 0
    reasoning_tokens: int = 0  # of output_tokens
    estimated_nanos: int = 0  # of cost_nanos: calls cut by a crash, charged their worst case
    platform: str = ""
    team_id: str = ""


@dataclass(frozen=True)
class LimitChange:
    """One recorded change of a limit: who, when, old -> new (`*_set` False means "the default")."""

    changed_at: datetime
    changed_by: str
    subject: str
    metric: str
    old_value: int | None
    old_set: bool
    new_value: int | None
    new_set: bool
