"""Budgets: every model call reserves its worst case, then settles to its real cost or is released.

The reservation is one atomic write that fails if any limit would be crossed (see the Ledger), so
concurrent requests can never overspend. A refusal tells the user what they used, the limit, and
when it resets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from bot.billing.money import format_usd, usd_to_nanos
from bot.clock import Clock
from bot.errors import UserFacingError
from bot.messages import IncomingMessage
from bot.settings import Settings
from bot.wording import count
from storage import Ledger, StoreFailed
from storage.ledger_records import (
    Charge,
    InFlightLease,
    Kind,
    LimitOverride,
    Limits,
    PeriodTotals,
    Recovered,
    Refusal,
    ReservationRequest,
    Settlement,
    Units,
    effective,
)
from storage.renewal_loop import RenewalLoop

log = logging.getLogger(__name__)

SWEEP_INTERVAL = timedelta(minutes=1)


NO_LIMIT_WARNING = (
    "no budget is set: QUOTA_USER_DAILY_USD and QUOTA_TEAM_MONTHLY_USD are empty, so model calls are "
    "unlimited unless an admin sets limits with /quota (see .env.example for defaults)"
)


def warn_if_unlimited(settings: Settings) -> bool:
    """Say so in one WARNING line when neither a per-user daily nor a per-team monthly USD limit is set."""
    if settings.quota_user_daily_usd is None and settings.quota_team_monthly_usd is None:
        log.warning(NO_LIMIT_WARNING)
        return True
    return False


class QuotaExceeded(UserFacingError):
    """A call was refused because it could cross a budget."""


class TooManyInFlight(UserFacingError):
    """A person already has MAX_USER_IN_FLIGHT requests running (in any process)."""


@dataclass(frozen=True)
class Periods:
    """The quota day and month that `now` falls in, and when each resets, in QUOTA_TIMEZONE."""

    day: str
    month: str
    day_resets_at: datetime
    month_resets_at: datetime
    day_starts_at: datetime

    @classmethod
    def at(cls, now: datetime, tz: tzinfo) -> Periods:
        """The periods containing `now`."""
        local = now.astimezone(tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        next_day = midnight + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
        first = midnight.replace(day=1)
        if first.month == 12:
            next_month = first.replace(year=first.year + 1, month=1)
        else:
            next_month = first.replace(month=first.month + 1)
        return cls(local.date().isoformat(), f"{local.year:04d}-{local.month:02d}", next_day, next_month, midnight)

    def hold(self, now: datetime) -> bool:
        """Whether `now` falls in these periods (the same quota day, hence the same month)."""
        return self.day_starts_at <= now < self.day_resets_at


# A write that settles a call together with what its caller keeps of it; False when the hold had been lost.
Recorder = Callable[[Settlement], Awaitable[bool]]


class Reservation:
    """The reservation of one metered call; settle it with the real usage, or leave the block to release it.

    While the block runs, the reservation is renewed (see `Budget.metered`), so a long call keeps its
    hold; only a holder that stopped renewing (a dead or frozen process) loses it. A call cut short
    (a cancellation) notes what the provider ran with `note_spent`: leaving the block then settles
    that instead of releasing.
    """

    def __init__(self, budget: Budget, reservation_id: int, charge: Charge) -> None:
        self._budget = budget
        self.id = reservation_id
        self.charge = charge
        self.settled = False
        self.spent_units = Units()
        self.spent_nanos = 0

    async def settle(self, units: Units, cost_nanos: int, *, along: Recorder | None = None) -> None:
        """Record the real cost: even when the hold was lost meanwhile, since the provider billed it.

        `along` writes the settlement together with what the caller keeps of the call (a reply in
        history) in one transaction, returning False when the hold had been lost. If that write fails,
        the cost is noted spent, so leaving the block still charges it.
        """
        now = self._budget.now()
        ledger = self._budget.ledger
        if along is None:
            held = await ledger.settle(self.id, units, cost_nanos, now)
        else:
            try:
                held = await along(Settlement(self.id, units, cost_nanos, now))
            except BaseException:
                self.note_spent(units, cost_nanos)
                raise
        if not held:
            totals = await ledger.settle_late(self.id, units, cost_nanos, now)
            if totals is not None:
                await self._budget.check_late(self, totals, cost_nanos)
        self.settled = True

    def note_spent(self, units: Units, cost_nanos: int) -> None:
        """Add what a call cut short had cost, to be settled when the block is left unsettled."""
        self.spent_units = _add(self.spent_units, units)
        self.spent_nanos += cost_nanos

    @property
    def has_spent(self) -> bool:
        """Whether anything was noted as spent."""
        return self.spent_nanos > 0 or self.spent_units != Units()


def charge_for(message: IncomingMessage, kind: Kind, model: str) -> Charge:
    """Who pays for a call made for `message`: its author, in its team and channel."""
    return Charge(message.platform, message.team_id, message.author.id, message.channel_id, kind, model)


class Budget:
    """Reserves, settles and releases against the limits in force for a user and team.

    `sleep` paces the renewal of held reservations (tests pass a clock's own sleep).
    """

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        clock: Clock,
        holder: str | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ledger = ledger
        self.now = clock
        self._settings = settings
        self._tz = ZoneInfo(settings.quota_timezone)
        self._periods = Periods.at(datetime.min.replace(tzinfo=UTC), UTC)  # none holds: worked out on first use
        self._ttl = timedelta(seconds=settings.reservation_ttl_seconds)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self._next_sweep = datetime.min.replace(tzinfo=self._tz)
        self._defaults = default_limits(settings)
        self._held: dict[int, Reservation] = {}  # this process's running calls, renewed by one loop
        self._leases: set[int] = set()
        self._renewals = RenewalLoop("renewals", self.renew_every, lambda: bool(self._held or self._leases),
                                     self._renew, sleep)  # fmt: skip

    @property
    def renew_every(self) -> float:
        """Seconds between renewals of a held reservation: a third of the TTL, so two can fail in a row."""
        return self._ttl.total_seconds() / 3

    def periods(self, now: datetime | None = None) -> Periods:
        """The quota periods at `now` (default: the clock's now); worked out again only when the day changes."""
        now = now or self.now()
        if not self._periods.hold(now):
            self._periods = Periods.at(now, self._tz)
        return self._periods

    async def recover(self) -> Recovered:
        """On start-up: recover reservations that expired, and those of dead processes on this host.

        A reservation whose request had been sent is charged its worst case, marked estimated (the
        provider may have billed it); one never sent is released.
        """
        now = self.now()
        recovered = await self.ledger.release_expired(now)
        host = socket.gethostname()
        dead = [h for h in await self.ledger.reservation_holders() if h != self.holder and _dead_on(host, h)]
        recovered += await self.ledger.release_held_by(dead, now)
        await self.ledger.forget_in_flight(now, dead)
        if recovered.total:
            log.warning(
                "recovered %d reservation(s) left by a crash or a hung call: %d released (never sent), "
                "%d charged their worst case as estimated (sent; the provider may have billed them)",
                recovered.total, recovered.released, recovered.estimated,
            )  # fmt: skip
        self._next_sweep = now + SWEEP_INTERVAL
        return recovered

    async def sweep(self, now: datetime) -> Recovered:
        """Recover reservations whose holder stopped renewing them."""
        recovered = await self.ledger.release_expired(now)
        if recovered.total:
            log.warning(
                "%d reservation(s) expired (their holder stopped renewing): %d released, %d charged as estimated",
                recovered.total, recovered.released, recovered.estimated,
            )  # fmt: skip
        return recovered

    async def limits_for(self, team_id: str, user_id: str) -> Limits:
        """Effective limits: the user's override, else the team's every-user override, else the default."""
        overrides = await self.ledger.limit_overrides(team_id, user_id)
        return resolve_limits(self._settings, overrides, user_id)

    @asynccontextmanager
    async def metered(
        self,
        charge: Charge,
        units: Units,
        cost_nanos: int,
        *,
        slot: asyncio.Semaphore | None = None,
        reserved: int | None = None,
    ) -> AsyncIterator[Reservation]:
        """The one path of every model call: reserve its worst case, marked sent; settle, charge or release on exit.

        `slot` (the process's bound on model calls in flight) is taken first, so the request goes out
        as soon as the reservation is written: the reservation carries its sent mark from the start
        (no second write), and a crash from then on charges the worst case, marked estimated (the
        provider may have billed it). Leaving the block unsettled (a failure, a cancellation) charges
        what was noted spent, else gives the reservation back. Renewed while the block runs.

        `reserved`: the id of this call's reservation, already written as `request` makes it (with a chat
        turn's other writes, see `Store.open_turn`), its caller holding the slot since before: it is held
        from here as if reserved here.
        """
        async with slot if slot is not None else nullcontext():
            if reserved is None:
                reservation = await self._reserve(charge, units, cost_nanos)
            else:
                reservation = Reservation(self, reserved, charge)
            self._held[reservation.id] = reservation
            self._renewals.start()
            try:
                if reserved is not None:
                    await self._sweep_if_due(self.now())
                yield reservation
            finally:
                self._held.pop(reservation.id, None)  # the renewal loop drops a lost one itself
                if not reservation.settled:
                    # Shielded: a cancelled call must still charge what ran, and give the rest back.
                    if reservation.has_spent:
                        await asyncio.shield(reservation.settle(reservation.spent_units, reservation.spent_nanos))
                    else:
                        await asyncio.shield(self.ledger.release(reservation.id, self.now()))

    async def _reserve(self, charge: Charge, units: Units, cost_nanos: int) -> Reservation:
        """One limit-checked write of the worst case, already marked sent; QuotaExceeded with the figures if refused."""
        now = self.now()
        await self._sweep_if_due(now)
        outcome = await self.ledger.reserve_or_totals(self.request(charge, units, cost_nanos, now))
        if isinstance(outcome, Refusal):
            periods = self.periods(now)
            raise QuotaExceeded(refusal(outcome.limits, outcome.totals, units, cost_nanos, periods, now))
        return Reservation(self, outcome, charge)

    def request(self, charge: Charge, units: Units, cost_nanos: int, now: datetime | None = None) -> ReservationRequest:
        """The reservation of a call's worst case as `metered` writes it, marked sent (pure: it may be computed
        and written with other statements, see `Store.open_turn`)."""
        now = now or self.now()
        periods = self.periods(now)
        return ReservationRequest(
            charge=charge,
            units=units,
            cost_nanos=cost_nanos,
            user_day=periods.day,
            team_month=periods.month,
            defaults=self._defaults,
            now=now,
            expires_at=now + self._ttl,
            holder=self.holder,
            sent_at=now,
        )

    async def _sweep_if_due(self, now: datetime) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            await self.sweep(now)

    @asynccontextmanager
    async def in_flight(self, platform: str, team_id: str, user_id: str, limit: int) -> AsyncIterator[InFlightLease]:
        """Count one running request of a person for the block, across every process on the database.

        Raises TooManyInFlight when they already have `limit` running. The count is a lease renewed
        like a reservation, so a crashed process's requests stop counting within the TTL.
        """
        now = self.now()
        lease = await self.ledger.claim_in_flight(platform, team_id, user_id, self.holder, now, now + self._ttl, limit)
        if lease is None:
            raise TooManyInFlight(
                f"You already have {count(limit, 'request')} running; please wait for them to finish."
            )
        running = InFlightLease(lease)
        self._leases.add(lease)
        self._renewals.start()
        try:
            yield running  # a chat turn releases it with its reply (Store.add_reply)
        finally:
            self._leases.discard(lease)
            if not running.released:
                await asyncio.shield(self.ledger.release_in_flight(lease))

    async def _renew(self) -> None:
        """Renew every held reservation and lease, one statement each (a round of `RenewalLoop`, every third of
        the TTL, rather than a task per call)."""
        expires_at = self.now() + self._ttl
        try:
            if self._leases:
                await self.ledger.renew_in_flight(list(self._leases), expires_at)
            if self._held:
                asked = list(self._held)
                kept = set(await self.ledger.renew(asked, expires_at))
                for lost in asked:
                    reservation = self._held.get(lost)
                    if lost not in kept and reservation is not None and not reservation.settled:
                        del self._held[lost]
                        log.warning("reservation %d was lost while its call ran (this process stalled past the TTL)",
                                    lost)  # fmt: skip
        except StoreFailed as exc:  # the database is busy or failing: try again at the next round
            log.warning("could not renew held reservations and in-flight leases: %s", exc)

    async def close(self) -> None:
        """Stop the renewal loop (at shutdown, once every call has ended)."""
        await self._renewals.close()

    async def check_late(self, reservation: Reservation, totals: PeriodTotals, cost_nanos: int) -> None:
        """A settle whose hold had been lost went through the limits again: say so if it crossed one.

        It is recorded all the same (the provider billed it); the period's further calls are then
        refused until it resets, since the totals are past the limit.
        """
        limits = await self.limits_for(reservation.charge.team_id, reservation.charge.user_id)
        over = crossed_limits(limits, totals)
        if over:
            log.warning(
                "reservation %d settled at %s after its hold was lost; %s: further calls are refused until it resets",
                reservation.id, format_usd(cost_nanos), "; ".join(over),
            )  # fmt: skip
        else:
            log.info("reservation %d settled after its hold was lost; within the limits", reservation.id)


def crossed_limits(limits: Limits, totals: PeriodTotals) -> list[str]:
    """Which limits the totals are past, in words for the log."""
    over = []
    if limits.user_daily_nanos is not None and totals.user_day_nanos > limits.user_daily_nanos:
        over.append(f"user daily {format_usd(totals.user_day_nanos)} of {format_usd(limits.user_daily_nanos)}")
    if limits.team_monthly_nanos is not None and totals.team_month_nanos > limits.team_monthly_nanos:
        over.append(f"team monthly {format_usd(totals.team_month_nanos)} of {format_usd(limits.team_monthly_nanos)}")
    if limits.user_daily_images is not None and totals.user_day_images > limits.user_daily_images:
        over.append(f"images {totals.user_day_images} of {limits.user_daily_images}")
    if limits.user_daily_audio_ms is not None and totals.user_day_audio_ms > limits.user_daily_audio_ms:
        over.append(f"audio {_minutes(totals.user_day_audio_ms)} of {_minutes(limits.user_daily_audio_ms)} min")
    if limits.user_daily_searches is not None and totals.user_day_searches > limits.user_daily_searches:
        over.append(f"searches {totals.user_day_searches} of {limits.user_daily_searches}")
    return over


def resolve_limits(settings: Settings, overrides: list[LimitOverride], user_id: str) -> Limits:
    """Apply the precedence user > every-user ('*') > settings default, per metric."""
    return effective(default_limits(settings), overrides, user_id)


def default_limits(settings: Settings) -> Limits:
    """The limits the settings set, before any admin override."""
    return Limits(
        user_daily_nanos=_nanos(settings.quota_user_daily_usd),
        team_monthly_nanos=_nanos(settings.quota_team_monthly_usd),
        user_daily_images=settings.quota_user_daily_images,
        user_daily_audio_ms=None
        if settings.quota_user_daily_audio_minutes is None
        else int(settings.quota_user_daily_audio_minutes * 60_000),
        user_daily_searches=settings.quota_user_daily_searches,
    )


def refusal(limits: Limits, totals: PeriodTotals, units: Units, cost: int, periods: Periods, now: datetime) -> str:
    """One line: what was used, the limit, and when it resets, for the limit this call crosses.

    The totals are those the refusing decision saw (read under the ledger lock that decided it).
    """
    day_at, month_at = periods.day_resets_at, periods.month_resets_at
    day_reset = f"it resets in {until(day_at, now)} ({day_at:%H:%M} {day_at.tzname()})"
    month_reset = f"it resets in {until(month_at, now)} ({month_at:%-d %b %H:%M} {month_at.tzname()})"
    need = f" This request needs up to {format_usd(cost)}." if cost else ""
    candidates: list[tuple[int, str]] = []  # (room left after this call, message)
    if limits.user_daily_nanos is not None:
        used, limit = totals.user_day_nanos, limits.user_daily_nanos
        candidates.append(
            (
                limit - used - cost,
                f"You've used {format_usd(used)} of your {format_usd(limit)} daily budget; {day_reset}.{need}",
            )
        )
    if limits.team_monthly_nanos is not None:
        used, limit = totals.team_month_nanos, limits.team_monthly_nanos
        candidates.append(
            (
                limit - used - cost,
                f"The team has used {format_usd(used)} of its {format_usd(limit)} monthly budget; {month_reset}.{need}",
            )
        )
    if limits.user_daily_images is not None and units.images:
        used, limit = totals.user_day_images, limits.user_daily_images
        candidates.append(
            (
                limit - used - units.images,
                f"You've made {used} of your {limit} images today (this asks for {units.images}); {day_reset}.",
            )
        )
    if limits.user_daily_audio_ms is not None and units.audio_ms:
        used, limit = totals.user_day_audio_ms, limits.user_daily_audio_ms
        candidates.append(
            (
                limit - used - units.audio_ms,
                f"You've transcribed {_minutes(used)} of your {_minutes(limit)} audio minutes today "
                f"(this needs {_minutes(units.audio_ms)}); {day_reset}.",
            )
        )
    if limits.user_daily_searches is not None and units.searches:
        used, limit = totals.user_day_searches, limits.user_daily_searches
        candidates.append(
            (limit - used - units.searches, f"You've used {used} of your {limit} daily searches; {day_reset}.")
        )
    crossed = [message for room, message in candidates if room < 0]
    if crossed:
        return crossed[0]
    if candidates:
        return min(candidates, key=lambda candidate: candidate[0])[1]
    return "This request would cross a budget that an admin just changed; please try again."


def until(then: datetime, now: datetime) -> str:
    """'6 h 12 min', '3 d 4 h', '45 min' — rounded up to the minute."""
    minutes = max(1, -(-int((then - now).total_seconds()) // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def _add(a: Units, b: Units) -> Units:
    return Units(
        a.input_tokens + b.input_tokens,
        a.cached_tokens + b.cached_tokens,
        a.output_tokens + b.output_tokens,
        a.images + b.images,
        a.audio_ms + b.audio_ms,
        a.searches + b.searches,
        a.reasoning_tokens + b.reasoning_tokens,
    )


def _minutes(ms: int) -> str:
    return f"{ms / 60_000:.1f}".removesuffix(".0")


def _nanos(usd: object) -> int | None:
    return None if usd is None else usd_to_nanos(str(usd))


def _dead_on(host: str, holder: str) -> bool:
    """True when `holder` names a process on this host that no longer runs."""
    holder_host, _, pid = holder.rpartition(":")
    if holder_host != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
