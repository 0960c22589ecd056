"""The usage ledger and quota limits, for both databases.

A reservation is one statement: insert the row unless a limit would be crossed, checked against
the period totals the ledger's triggers keep current. It runs `serialized` on the team's ledger
lock: on SQLite the statement's own write lock (taken before it reads) makes it exact; on
PostgreSQL an advisory lock per team serializes one team's reservations (other teams run in
parallel), each then checking committed totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage.ledger_records import (
    ALL_USERS,
    TEAM_SUBJECT,
    LimitChange,
    LimitOverride,
    Metric,
    PeriodTotals,
    Recovered,
    Refusal,
    ReservationRequest,
    Settlement,
    Units,
    UsageRow,
    effective,
    fits,
)
from storage.sql.connection import (
    Connection,
    Database,
    Row,
    Script,
    Serialize,
    Statement,
    ledger_lock,
    limits_lock,
)


def _total(column: str, scope: str, subject: str, period: str, team: str) -> str:
    """Spend so far in one period: the sum of its usage_totals rows (PostgreSQL spreads a team's over several,
    see its migration ledger_team_totals_spread), read by primary-key prefix."""
    return (
        f"COALESCE((SELECT CAST(sum({column}) AS BIGINT) FROM usage_totals WHERE team_id = {team}"
        f" AND scope = '{scope}' AND subject = {subject} AND period = {period}), 0)"
    )


def _limit(metric: str, subjects: tuple[str, ...], default: str, team: str) -> str:
    """The limit in force for one metric: the override of the first of `subjects` that has one (the user's before
    '*'), else the default ($n); -1 when unlimited (an override set to NULL, or no default). A primary-key read per
    subject (an override is never NULL once read: COALESCE(value, -1)), so no sort. `effective` in
    storage/ledger_records.py is the same rule in Python."""
    overrides = ", ".join(
        f"(SELECT COALESCE(value, -1) FROM quota_limits WHERE team_id = {team} AND metric = '{metric}'"
        f" AND subject = {subject})"
        for subject in subjects
    )
    return f"COALESCE({overrides}, CAST({default} AS BIGINT), -1)"


def _within_limits(team: str, user: str, day: str, month: str, defaults: str, adding: tuple[str, ...]) -> str:
    """`FROM (the limits in force) AS l WHERE` every limit holds with `adding` (cost, cost, images, audio,
    searches) on top of the period totals. `defaults`: the first of five parameters ($n..$n+4), the settings'
    limits."""
    first = int(defaults.removeprefix("$"))
    usd, team_usd, images, audio, searches = (f"${first + i}" for i in range(5))
    mine = (user, "'*'")
    return f"""FROM (SELECT {_limit("daily_usd", mine, usd, team)} AS user_usd,
             {_limit("monthly_usd", ("''",), team_usd, team)} AS team_usd,
             {_limit("daily_images", mine, images, team)} AS user_images,
             {_limit("daily_audio", mine, audio, team)} AS user_audio,
             {_limit("daily_searches", mine, searches, team)} AS user_searches) AS l
WHERE (l.user_usd < 0 OR {_total("cost_nanos", "user", user, day, team)} + {adding[0]} <= l.user_usd)
  AND (l.team_usd < 0 OR {_total("cost_nanos", "team", "''", month, team)} + {adding[1]} <= l.team_usd)
  AND (l.user_images < 0 OR {_total("images", "user", user, day, team)} + {adding[2]} <= l.user_images)
  AND (l.user_audio < 0 OR {_total("audio_ms", "user", user, day, team)} + {adding[3]} <= l.user_audio)
  AND (l.user_searches < 0 OR {_total("searches", "user", user, day, team)} + {adding[4]} <= l.user_searches)"""


# The limits are read inside the reserving statement, so a call costs no separate read of them.
RESERVE = f"""
INSERT INTO usage_ledger (platform, team_id, user_id, channel_id, kind, model, state, cost_nanos, input_tokens,
    cached_tokens, output_tokens, images, audio_ms, user_day, team_month, created_at, expires_at, holder, sent_at,
    searches)
SELECT $1, $2, $3, $4, $5, $6, 'reserved', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $23, $24
{_within_limits("$2", "$3", "$13", "$14", "$18", ("$7", "$7", "$11", "$12", "$24"))}
RETURNING id
"""
# Whether the period totals, as they are now (a reservation just made included), are within every limit.
WITHIN_LIMITS = f"SELECT 1 {_within_limits('$1', '$2', '$3', '$4', '$5', ('0', '0', '0', '0', '0'))}"
_SETTLE = (
    "UPDATE usage_ledger SET state = 'settled', estimated = FALSE, cost_nanos = $1, input_tokens = $2,"
    " cached_tokens = $3, output_tokens = $4, images = $5, audio_ms = $6, settled_at = $7, searches = $9,"
    " reasoning_tokens = $10 WHERE id = $8"
)
SETTLE = f"{_SETTLE} AND state = 'reserved' RETURNING id"
# A settle whose hold was lost (released, or charged its worst case as estimated, because its holder
# had stopped renewing it): the provider billed the call, so its real cost is recorded all the same.
SETTLE_LATE = (
    f"{_SETTLE} AND (state = 'released' OR (state = 'settled' AND estimated))"
    " RETURNING team_id, user_id, user_day, team_month"
)
RENEW = "UPDATE usage_ledger SET expires_at = $1 WHERE id IN (LIST($2 AS bigint)) AND state = 'reserved' RETURNING id"
_RELEASE = (
    "UPDATE usage_ledger SET state = 'released', cost_nanos = 0, images = 0, audio_ms = 0, searches = 0,"
    " settled_at = $1"
)
# A reservation whose request was sent before its holder vanished may have been billed: it keeps its
# worst case, marked estimated. One never sent is released.
_ESTIMATE = "UPDATE usage_ledger SET state = 'settled', estimated = TRUE, settled_at = $1"
RELEASE = f"{_RELEASE} WHERE id = $2 AND state = 'reserved' RETURNING id"
_EXPIRED = "state = 'reserved' AND expires_at <= $1"
_HELD_BY = "state = 'reserved' AND holder IN (LIST($2 AS text))"
ESTIMATE_EXPIRED = f"{_ESTIMATE} WHERE {_EXPIRED} AND sent_at IS NOT NULL RETURNING id"
RELEASE_EXPIRED = f"{_RELEASE} WHERE {_EXPIRED} AND sent_at IS NULL RETURNING id"
ESTIMATE_HELD_BY = f"{_ESTIMATE} WHERE {_HELD_BY} AND sent_at IS NOT NULL RETURNING id"
RELEASE_HELD_BY = f"{_RELEASE} WHERE {_HELD_BY} AND sent_at IS NULL RETURNING id"
HOLDERS = "SELECT DISTINCT holder FROM usage_ledger WHERE state = 'reserved'"
TOTALS = (
    "SELECT scope, CAST(sum(cost_nanos) AS BIGINT), CAST(sum(images) AS BIGINT), CAST(sum(audio_ms) AS BIGINT),"
    " CAST(sum(searches) AS BIGINT) FROM usage_totals WHERE team_id = $1 AND ("
    " (scope = 'user' AND subject = $2 AND period = $3) OR (scope = 'team' AND subject = '' AND period = $4))"
    " GROUP BY scope"
)
_LIMITS = "SELECT subject, metric, value FROM quota_limits WHERE team_id = $1"
ALL_LIMITS = f"{_LIMITS} ORDER BY subject, metric"
USER_LIMITS = f"{_LIMITS} AND subject IN ($2, $3, $4)"
ONE_LIMIT = "SELECT value FROM quota_limits WHERE team_id = $1 AND subject = $2 AND metric = $3"
SET_LIMIT = (
    "INSERT INTO quota_limits (team_id, subject, metric, value) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (team_id, subject, metric) DO UPDATE SET value = excluded.value"
)
CLEAR_LIMITS = "DELETE FROM quota_limits WHERE team_id = $1 AND subject = $2 RETURNING subject, metric, value"
AUDIT = (
    "INSERT INTO quota_changes (team_id, subject, metric, old_value, old_set, new_value, new_set, changed_by,"
    " changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
LIMIT_CHANGES = (
    "SELECT changed_at, changed_by, subject, metric, old_value, old_set, new_value, new_set"
    " FROM quota_changes WHERE team_id = $1 ORDER BY id DESC LIMIT $2"
)
USAGE = (
    "SELECT user_id, kind, user_day, count(*), sum(cost_nanos), sum(input_tokens), sum(output_tokens),"
    " sum(images), sum(audio_ms), sum(CASE WHEN estimated THEN cost_nanos ELSE 0 END), platform, team_id,"
    " sum(searches), sum(reasoning_tokens)"
    " FROM usage_ledger"
    " WHERE state != 'released' AND user_day >= $1 AND (CAST($2 AS TEXT) IS NULL OR user_day <= $2)"
    " AND (CAST($3 AS TEXT) IS NULL OR team_id = $3) AND (CAST($4 AS TEXT) IS NULL OR user_id = $4)"
    " GROUP BY platform, team_id, user_id, kind, user_day ORDER BY user_day, platform, team_id, user_id, kind"
)
LEDGER_ROWS = "SELECT kind, model, cost_nanos, state FROM usage_ledger WHERE team_id = $1 ORDER BY id"


class SQLLedger:
    """Reservations, settlements, period totals, admin limits and their audit trail."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserve(self, request: ReservationRequest) -> int | None:
        """Insert a reservation unless it would cross a limit: its id, or None when refused."""
        outcome = await self.reserve_or_totals(request)
        return outcome if isinstance(outcome, int) else None

    async def reserve_or_totals(self, request: ReservationRequest) -> int | Refusal:
        """Insert a reservation unless it would cross a limit: its id, or the limits and totals that refused it.

        The fast path is the one statement. A refusal is decided again in a transaction holding the
        ledger lock (and SQLite's write lock): it reads the limits and totals and refuses on those very
        figures, so the refusal quotes what it was refused on.
        """
        c = request.charge
        async with self._db.serialized(ledger_lock(c.team_id)) as conn:
            reserved = await _reserve(conn, request)
        if reserved is not None:
            return reserved
        async with self._db.transaction(ledger_lock(c.team_id)) as tx:
            while True:
                figures = await _figures(tx, request)
                if not fits(request, figures.limits, figures.totals):
                    return figures
                reserved = await _reserve(tx, request)
                if reserved is not None:
                    return reserved

    def reserve_script(self, request: ReservationRequest) -> Script[int | None]:
        """The fast path of `reserve_or_totals` as steps of a caller's script (see Database.run): the
        reservation's id, or None when it was not made (then `reserve_or_totals` decides, and says why)."""
        yield Serialize(ledger_lock(request.charge.team_id))
        rows = yield (RESERVE, reserve_params(request))
        yield Serialize(None)
        return int(rows[0][0]) if rows else None

    async def figures(self, request: ReservationRequest) -> Refusal:
        """The limits and period totals bearing on a request, read under the team's ledger lock."""
        async with self._db.transaction(ledger_lock(request.charge.team_id)) as tx:
            return await _figures(tx, request)

    async def settle(self, reservation_id: int, units: Units, cost_nanos: int, now: datetime) -> bool:
        """Record the real cost of a reserved call. False when its hold had been lost (see settle_late)."""
        return await self._db.fetchrow(SETTLE, *_settled(reservation_id, units, cost_nanos, now)) is not None

    async def settle_late(
        self, reservation_id: int, units: Units, cost_nanos: int, now: datetime
    ) -> PeriodTotals | None:
        """Record the real cost of a call whose hold was lost; the period totals after it (None: no such row)."""
        async with self._db.transaction() as tx:
            row = await tx.fetchrow(SETTLE_LATE, *_settled(reservation_id, units, cost_nanos, now))
            if row is None:
                return None
            return _totals(await tx.fetch(TOTALS, row[0], row[1], row[2], row[3]))

    async def renew(self, reservation_ids: Sequence[int], expires_at: datetime) -> list[int]:
        """Keep running calls' reservations alive until `expires_at`; the ids of those still held."""
        return [int(row[0]) for row in await self._db.fetch(RENEW, expires_at.isoformat(), list(reservation_ids))]

    async def release(self, reservation_id: int, now: datetime) -> bool:
        """Give a reservation back: the call failed and was not charged."""
        return await self._db.fetchrow(RELEASE, now.isoformat(), reservation_id) is not None

    async def release_expired(self, now: datetime) -> Recovered:
        """Reservations past their expiry (a holder that stopped renewing): estimated if sent, else released."""
        estimated = len(await self._db.fetch(ESTIMATE_EXPIRED, now.isoformat()))
        return Recovered(len(await self._db.fetch(RELEASE_EXPIRED, now.isoformat())), estimated)

    async def release_held_by(self, holders: Sequence[str], now: datetime) -> Recovered:
        """Reservations of the given (dead) holders: charged their worst case if sent, else released."""
        estimated = len(await self._db.fetch(ESTIMATE_HELD_BY, now.isoformat(), list(holders)))
        return Recovered(len(await self._db.fetch(RELEASE_HELD_BY, now.isoformat(), list(holders))), estimated)

    # Each database counts a person's requests in flight its own way (storage/sqlite/ledger.py in memory,
    # storage/postgres/ledger.py in rows shared by every process).

    async def claim_in_flight(
        self, platform: str, team_id: str, user_id: str, holder: str, now: datetime, expires_at: datetime, limit: int
    ) -> int | None:
        """A lease for one message of this user, unless they already have `limit` running: its id, or None."""
        raise NotImplementedError

    async def renew_in_flight(self, lease_ids: Sequence[int], expires_at: datetime) -> None:
        """Keep messages' leases alive while they run."""
        raise NotImplementedError

    async def release_in_flight(self, lease_id: int) -> None:
        """The message is done."""
        raise NotImplementedError

    def in_flight_release(self, lease_id: int) -> list[Statement]:
        """The statements that release a lease inside a caller's transaction (the message is done)."""
        raise NotImplementedError

    async def forget_in_flight(self, now: datetime, dead_holders: Sequence[str]) -> int:
        """Drop leases that expired or whose holder is known dead."""
        raise NotImplementedError

    async def reservation_holders(self) -> list[str]:
        """The distinct holders of open reservations."""
        return [row[0] for row in await self._db.fetch(HOLDERS)]

    async def totals(self, team_id: str, user_id: str, user_day: str, team_month: str) -> PeriodTotals:
        """Reserved + settled spend for the user's day and the team's month."""
        return _totals(await self._db.fetch(TOTALS, team_id, user_id, user_day, team_month))

    async def limit_overrides(self, team_id: str, user_id: str | None = None) -> list[LimitOverride]:
        """Admin-set limits of the team: all of them, or those that bear on one user."""
        if user_id is None:
            rows = await self._db.fetch(ALL_LIMITS, team_id)
        else:
            rows = await self._db.fetch(USER_LIMITS, team_id, user_id, ALL_USERS, TEAM_SUBJECT)
        return [LimitOverride(r[0], r[1], r[2]) for r in rows]

    async def set_limit(
        self, team_id: str, subject: str, metric: Metric, value: int | None, *, changed_by: str, now: datetime
    ) -> LimitOverride | None:
        """Set one limit (None = unlimited) and record the change; returns the previous override."""
        async with self._db.transaction(limits_lock(team_id)) as tx:
            row = await tx.fetchrow(ONE_LIMIT, team_id, subject, metric)
            old = LimitOverride(subject, metric, row[0]) if row else None
            await tx.execute(SET_LIMIT, team_id, subject, metric, value)
            await _audit(tx, team_id, subject, metric, old, LimitOverride(subject, metric, value), changed_by, now)
        return old

    async def clear_limits(self, team_id: str, subject: str, *, changed_by: str, now: datetime) -> int:
        """Remove every override of `subject` (back to the defaults), recording each change."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch(CLEAR_LIMITS, team_id, subject)
            for r in rows:
                await _audit(tx, team_id, subject, r[1], LimitOverride(r[0], r[1], r[2]), None, changed_by, now)
        return len(rows)

    async def limit_changes(self, team_id: str, limit: int = 20) -> list[LimitChange]:
        """The latest limit changes of a team, newest first."""
        rows = await self._db.fetch(LIMIT_CHANGES, team_id, limit)
        return [
            LimitChange(datetime.fromisoformat(r[0]), r[1], r[2], r[3], r[4], bool(r[5]), r[6], bool(r[7]))
            for r in rows
        ]

    async def usage(
        self, team_id: str | None, since_day: str, until_day: str | None = None, user_id: str | None = None
    ) -> list[UsageRow]:
        """Spend (settled and still reserved) grouped by user, kind and day (the quota day)."""
        rows = await self._db.fetch(USAGE, since_day, until_day, team_id, user_id)
        return [
            UsageRow(
                user_id=r[0], kind=r[1], day=r[2], calls=int(r[3]), cost_nanos=int(r[4]), input_tokens=int(r[5]),
                output_tokens=int(r[6]), images=int(r[7]), audio_ms=int(r[8]), estimated_nanos=int(r[9]),
                platform=r[10], team_id=r[11], searches=int(r[12]), reasoning_tokens=int(r[13]),
            )
            for r in rows
        ]  # fmt: skip

    async def ledger_rows(self, team_id: str) -> list[tuple[str, str, int, str]]:
        """(kind, model, cost_nanos, state) of every ledger row of a team, oldest first (for audits and tests)."""
        return [(r[0], r[1], r[2], r[3]) for r in await self._db.fetch(LEDGER_ROWS, team_id)]


async def _reserve(conn: Connection, request: ReservationRequest) -> int | None:
    reserved = await conn.fetchval(RESERVE, *reserve_params(request))
    return None if reserved is None else int(reserved)


def reserve_params(request: ReservationRequest) -> tuple[object, ...]:
    """RESERVE's parameters."""
    c, u, limits = request.charge, request.units, request.defaults
    return (
        c.platform, c.team_id, c.user_id, c.channel_id, c.kind, c.model, request.cost_nanos,
        u.input_tokens, u.cached_tokens, u.output_tokens, u.images, u.audio_ms, request.user_day,
        request.team_month, request.now.isoformat(), request.expires_at.isoformat(), request.holder,
        limits.user_daily_nanos, limits.team_monthly_nanos, limits.user_daily_images,
        limits.user_daily_audio_ms, limits.user_daily_searches,
        None if request.sent_at is None else request.sent_at.isoformat(), u.searches,
    )  # fmt: skip


def within_limits_params(request: ReservationRequest) -> tuple[object, ...]:
    """WITHIN_LIMITS' parameters."""
    c, limits = request.charge, request.defaults
    return (
        c.team_id, c.user_id, request.user_day, request.team_month, limits.user_daily_nanos,
        limits.team_monthly_nanos, limits.user_daily_images, limits.user_daily_audio_ms, limits.user_daily_searches,
    )  # fmt: skip


def settle_params(settlement: Settlement) -> tuple[object, ...]:
    """SETTLE's parameters (for a transaction that also writes what the call produced)."""
    s = settlement
    return _settled(s.reservation_id, s.units, s.cost_nanos, s.at)


async def _figures(tx: Connection, request: ReservationRequest) -> Refusal:
    c = request.charge
    overrides = await tx.fetch(USER_LIMITS, c.team_id, c.user_id, ALL_USERS, TEAM_SUBJECT)
    limits = effective(request.defaults, [LimitOverride(*row) for row in overrides], c.user_id)
    return Refusal(limits, _totals(await tx.fetch(TOTALS, c.team_id, c.user_id, request.user_day, request.team_month)))


def _settled(reservation_id: int, units: Units, cost_nanos: int, now: datetime) -> tuple[object, ...]:
    return (
        cost_nanos, units.input_tokens, units.cached_tokens, units.output_tokens, units.images,
        units.audio_ms, now.isoformat(), reservation_id, units.searches, units.reasoning_tokens,
    )  # fmt: skip


def _totals(rows: list[Row]) -> PeriodTotals:
    user = next((r for r in rows if r[0] == "user"), ("user", 0, 0, 0, 0))
    team = next((r for r in rows if r[0] == "team"), ("team", 0, 0, 0, 0))
    return PeriodTotals(int(user[1]), int(user[2]), int(user[3]), int(team[1]), int(user[4]))


async def _audit(
    tx: Connection, team_id: str, subject: str, metric: str, old: LimitOverride | None, new: LimitOverride | None,
    changed_by: str, now: datetime,
) -> None:  # fmt: skip
    await tx.execute(
        AUDIT,
        team_id, subject, metric, old.value if old else None, old is not None, new.value if new else None,
        new is not None, changed_by, now.isoformat(),
    )  # fmt: skip
