"""Channel digests: a channel's catch-up posted on a schedule, behind the `Digests` protocol.

The implementation, shared by every process on the database, is storage/sql/digests.py: a due run, and each
retry of a run whose post failed, is claimed by one conditional UPDATE, so of several processes exactly one
posts it. A run whose digest was made but whose post failed keeps the digest's text with it until it is posted
or given up, so a retry posts that text without reading the channel or calling the model again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class DigestKey:
    """The channel a digest is for."""

    platform: str
    team_id: str
    channel_id: str


@dataclass(frozen=True)
class DigestSchedule:
    """When a channel's digest is posted: `period` is "daily" or "weekly"; `weekday` 0 (Monday) to 6 for a
    weekly one (None for daily); `at` is "HH:MM" in QUOTA_TIMEZONE. `last_run` is the scheduled time of the
    last run claimed (None: never run; the first covers one period); `failures` the failed attempts to post
    it, `retry_at` when the next attempt may start (None: none waiting), and `text_kept` whether its digest's
    text waits with it for that retry."""

    key: DigestKey
    period: str
    weekday: int | None
    at: str
    set_by: str
    set_at: datetime
    last_run: datetime | None = None
    failures: int = 0
    retry_at: datetime | None = None
    text_kept: bool = False


@dataclass(frozen=True)
class ClaimedRun:
    """A run this process claimed (and must post): `due` is its scheduled time, `previous` the run before it
    (None when first), `attempt` 1 for its first attempt, 2 for the first retry…; `text` the digest an earlier
    attempt made but could not post, to post as it is (None: none made yet)."""

    due: datetime
    previous: datetime | None
    attempt: int = 1
    text: str | None = None


class Digests(Protocol):
    """The channels' digest schedules and their runs."""

    async def set(self, schedule: DigestSchedule) -> None:
        """Store (or replace) a channel's schedule; a replaced one keeps its last run."""

    async def get(self, key: DigestKey) -> DigestSchedule | None:
        """A channel's schedule, if it has one."""

    async def remove(self, key: DigestKey) -> bool:
        """Turn a channel's digest off; whether it had one."""

    async def schedules(self) -> list[DigestSchedule]:
        """Every schedule, by platform, team and channel."""

    async def claim(self, key: DigestKey, due: datetime) -> ClaimedRun | None:
        """Claim the run due at `due`; None when it is not due (already run at or after `due`, set after it,
        or the digest is gone). One statement, so of several processes claiming the same run exactly one
        gets it. A failed run still waiting for a retry is dropped (the new one covers from its time on)."""

    async def claim_retry(self, key: DigestKey, now: datetime) -> ClaimedRun | None:
        """Claim another attempt at the last run, when its post failed and its retry time is at or before
        `now`; None otherwise. One statement, like `claim`."""

    async def claimable(self, key: DigestKey, due: datetime, retry_until: datetime | None) -> bool:
        """Whether `claim(key, due)` or (with `retry_until`) `claim_retry(key, retry_until)` would take a run now,
        by the same conditions, claiming nothing (another process may still claim it first)."""

    async def record_failure(
        self, key: DigestKey, due: datetime, retry_at: datetime | None, text: str | None = None
    ) -> None:
        """Count a failed attempt at the run due at `due`, to be retried from `retry_at` (None: given up), keeping
        `text`, the digest made but not posted, for that retry (never when given up; None: none made)."""

    async def record_posted(self, key: DigestKey, due: datetime) -> None:
        """The run due at `due` was posted: the text kept for its retry goes."""
