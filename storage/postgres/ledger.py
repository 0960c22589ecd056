"""The PostgreSQL ledger: the rules of storage/sql/ledger.py, reservations that take no lock, and per-user
in-flight leases shared by every process on the database."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime

from storage.ledger_records import Refusal, ReservationRequest
from storage.postgres.database import NO_FLUSH
from storage.sql.connection import Script, Statement
from storage.sql.ledger import RELEASE, RESERVE, WITHIN_LIMITS, SQLLedger, reserve_params, within_limits_params

# MAX_USER_IN_FLIGHT across processes: a person's running messages hold slots 0 … limit-1 ($6), one row
# each, keyed by the slot. A claim takes the lowest slot that is free or whose lease expired, in one
# statement: two processes wanting the same slot meet on its key (one inserts, the other's conflict sees
# a live lease and takes nothing), so it needs no lock and no transaction. It returns the slot it saw
# free and the lease it got: a free slot and no lease means another claim took it first; try again. Its commit does
# not wait for the disk (NO_FLUSH): a claim lost in a server crash is harmless.
CLAIM_IN_FLIGHT = f"""
WITH free AS (
    SELECT s FROM generate_series(0, $6 - 1) AS s
    WHERE NOT EXISTS (SELECT 1 FROM user_in_flight f WHERE f.platform = $1 AND f.team_id = $2 AND f.user_id = $3
                      AND f.slot = s AND f.expires_at > $5)
    ORDER BY s LIMIT 1
), claimed AS (
    INSERT INTO user_in_flight (platform, team_id, user_id, slot, holder, expires_at)
    SELECT $1, $2, $3, s, $4, $7 FROM free
    ON CONFLICT (platform, team_id, user_id, slot) DO UPDATE
        SET id = DEFAULT, holder = excluded.holder, expires_at = excluded.expires_at
        WHERE user_in_flight.expires_at <= $5
    RETURNING id
)
SELECT (SELECT s FROM free), (SELECT id FROM claimed), {NO_FLUSH}
"""
RENEW_IN_FLIGHT = "UPDATE user_in_flight SET expires_at = $1 WHERE id IN (LIST($2 AS bigint))"
RELEASE_IN_FLIGHT = "DELETE FROM user_in_flight WHERE id = $1"
FORGET_IN_FLIGHT = "DELETE FROM user_in_flight WHERE expires_at <= $1 OR holder IN (LIST($2 AS text))"


# A reservation given back because a concurrent one crossed a limit with it tries again at most this often.
RESERVE_ATTEMPTS = 20


class PostgresLedger(SQLLedger):
    """Reservations and limits; MAX_USER_IN_FLIGHT as leases in the database, for several processes."""

    async def reserve_or_totals(self, request: ReservationRequest) -> int | Refusal:
        """Reserve without a lock, then check: exact across processes, and one team's calls need not queue.

        The reserving statement checks the committed totals but, under READ COMMITTED, cannot see a
        reservation committing meanwhile. So once committed, a reservation reads the totals again: if
        they are past a limit, it is given back and tried again. Why that is exact:
        of the reservations that pass, the one committed last checked after every other one had
        committed, and saw them all within the limits. A refusal is decided under the team's ledger lock
        (SQLLedger), so it quotes the figures it was refused on.
        """
        for attempt in range(RESERVE_ATTEMPTS):
            reserved = await self._db.fetchval(RESERVE, *reserve_params(request))
            if reserved is None:
                outcome = await super().reserve_or_totals(request)
                if isinstance(outcome, Refusal):
                    return outcome
                reserved = outcome
            if await self._db.run(_checked(int(reserved), request)) is not None:
                return int(reserved)
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # let the crowd thin out
        return await self.figures(request)  # the crowd never thinned out: refused, on the figures now

    def reserve_script(self, request: ReservationRequest) -> Script[int | None]:
        """One lock-free attempt of `reserve_or_totals`, as steps of a caller's script: reserve, then check the
        committed totals; given back at once when they are past a limit. Its id, or None (not reserved: then
        `reserve_or_totals` tries again, or refuses on the figures)."""
        rows = yield (RESERVE, reserve_params(request))
        return (yield from _checked(int(rows[0][0]), request)) if rows else None

    async def claim_in_flight(
        self, platform: str, team_id: str, user_id: str, holder: str, now: datetime, expires_at: datetime, limit: int
    ) -> int | None:
        """A lease for one message of this user, unless they already have `limit` live ones: its id, or None."""
        for _ in range(limit + 1):  # each lost race means one more slot taken: at most `limit` of them
            [row] = await self._db.fetch(
                CLAIM_IN_FLIGHT, platform, team_id, user_id, holder, now.isoformat(), limit, expires_at.isoformat()
            )
            free, lease = row[0], row[1]
            if lease is not None:
                return int(lease)
            if free is None:
                return None
        return None

    async def renew_in_flight(self, lease_ids: Sequence[int], expires_at: datetime) -> None:
        """Keep messages' leases alive while they run."""
        await self._db.execute(RENEW_IN_FLIGHT, expires_at.isoformat(), list(lease_ids))

    def in_flight_release(self, lease_id: int) -> list[Statement]:
        """Drop the lease row in the caller's transaction."""
        return [(RELEASE_IN_FLIGHT, (lease_id,))]

    async def release_in_flight(self, lease_id: int) -> None:
        """The message is done."""
        await self._db.execute(RELEASE_IN_FLIGHT, lease_id)

    async def forget_in_flight(self, now: datetime, dead_holders: Sequence[str]) -> int:
        """Drop leases that expired or whose holder is known dead."""
        return await self._db.execute(FORGET_IN_FLIGHT, now.isoformat(), list(dead_holders))


def _checked(reserved: int, request: ReservationRequest) -> Script[int | None]:
    """A committed reservation checked against the totals now: kept (its id) while they are within every
    limit, else given back at once (None)."""
    if (yield (WITHIN_LIMITS, within_limits_params(request))):
        return reserved
    yield (RELEASE, (request.now.isoformat(), reserved))
    return None
