"""The SQLite ledger: the rules of storage/sql/ledger.py, with per-user in-flight counts kept in memory.

A SQLite deployment is one bot process (see `SQLiteStore.turn_lock`), so the count of a person's
running requests needs no database row: claiming and releasing one costs no write, and nothing
outlives the process that would need a lease to expire.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from storage.sql.connection import Database, Statement
from storage.sql.ledger import SQLLedger


class SQLiteLedger(SQLLedger):
    """Reservations and limits in the file; MAX_USER_IN_FLIGHT counted in this process."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._next_lease = itertools.count(1)
        self._running: dict[tuple[str, str, str], set[int]] = {}
        self._lease_owner: dict[int, tuple[str, str, str]] = {}

    async def claim_in_flight(
        self, platform: str, team_id: str, user_id: str, holder: str, now: datetime, expires_at: datetime, limit: int
    ) -> int | None:
        """A lease for one message of this user, unless they already have `limit` running: its id, or None."""
        person = (platform, team_id, user_id)
        running = self._running.setdefault(person, set())
        if len(running) >= limit:
            return None
        lease = next(self._next_lease)
        running.add(lease)
        self._lease_owner[lease] = person
        return lease

    async def renew_in_flight(self, lease_ids: Sequence[int], expires_at: datetime) -> None:
        """Nothing to renew: the leases live as long as this process."""

    def in_flight_release(self, lease_id: int) -> list[Statement]:
        """Nothing for the caller's transaction to run: the count drops at once."""
        self._drop(lease_id)
        return []

    async def release_in_flight(self, lease_id: int) -> None:
        """The message is done."""
        self._drop(lease_id)

    def _drop(self, lease_id: int) -> None:
        person = self._lease_owner.pop(lease_id, None)
        if person is None:
            return
        running = self._running[person]
        running.discard(lease_id)
        if not running:
            del self._running[person]

    async def forget_in_flight(self, now: datetime, dead_holders: Sequence[str]) -> int:
        """Nothing to forget: a dead process's leases died with it."""
        return 0
