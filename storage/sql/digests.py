"""Channel digest schedules for both databases (storage/digests.py).

A run is claimed by one conditional UPDATE … RETURNING: it moves `last_run` to the due time only while
the stored one is before it, so when several processes claim the same run, one statement updates the row
and the others find it already moved. `previous_run` keeps the run before, for the catch-up's start.
A failed post sets `retry_at`; a retry is claimed the same way, by clearing `retry_at` while it is due. A digest
made but not posted waits in `unposted_text` for the retry, and goes when it is posted, given up, or the next
run is claimed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from storage.digests import ClaimedRun, DigestKey, DigestSchedule
from storage.sql.connection import Database, Row

_KEY = "platform = $1 AND team_id = $2 AND channel_id = $3"
_SET_COLUMNS = "platform, team_id, channel_id, period, weekday, at_time, set_by, set_at, last_run"
_COLUMNS = f"{_SET_COLUMNS}, failures, retry_at, unposted_text IS NOT NULL"
SET = (
    f"INSERT INTO channel_digests ({_SET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"
    " ON CONFLICT (platform, team_id, channel_id) DO UPDATE SET period = excluded.period,"
    " weekday = excluded.weekday, at_time = excluded.at_time, set_by = excluded.set_by, set_at = excluded.set_at"
)
GET = f"SELECT {_COLUMNS} FROM channel_digests WHERE {_KEY}"
REMOVE = f"DELETE FROM channel_digests WHERE {_KEY} RETURNING 1"
SCHEDULES = f"SELECT {_COLUMNS} FROM channel_digests ORDER BY platform, team_id, channel_id"
# A run at $4 is due unless already run at or after it, or set after it (a new schedule waits for its next time);
# a failed run's retry is due once its retry time is at or before $4 (or $5 for CLAIMABLE).
_RUN_DUE = "(last_run IS NULL OR last_run < $4) AND set_at < $4"
_RETRY_DUE = "retry_at IS NOT NULL AND retry_at <= {}"
_CLAIMED = "last_run, previous_run, failures, unposted_text"
CLAIM = (
    "UPDATE channel_digests SET previous_run = last_run, last_run = $4, failures = 0, retry_at = NULL,"
    f" unposted_text = NULL WHERE {_KEY} AND {_RUN_DUE} RETURNING {_CLAIMED}"
)
CLAIM_RETRY = (
    f"UPDATE channel_digests SET retry_at = NULL WHERE {_KEY} AND {_RETRY_DUE.format('$4')} RETURNING {_CLAIMED}"
)
# What CLAIM (at $4) or CLAIM_RETRY (at $5; '' for none: no stored time is before it) would take now, claiming nothing.
CLAIMABLE = f"SELECT 1 FROM channel_digests WHERE {_KEY} AND (({_RUN_DUE}) OR ({_RETRY_DUE.format('$5')}))"
# The text is kept only while a retry waits ($5): a run given up keeps nothing.
RECORD_FAILURE = (
    "UPDATE channel_digests SET failures = failures + 1, retry_at = $5,"
    f" unposted_text = CASE WHEN CAST($5 AS TEXT) IS NULL THEN NULL ELSE $6 END WHERE {_KEY} AND last_run = $4"
)
RECORD_POSTED = f"UPDATE channel_digests SET unposted_text = NULL WHERE {_KEY} AND last_run = $4"
# A digest's text summarizes its channel: /forget in a team ($1) drops the team's, and a message deleted or edited
# on a platform ($1; $2 team and $3 channel, '' = any) drops its channel's, so their retries summarize again.
FORGET_UNPOSTED = "UPDATE channel_digests SET unposted_text = NULL WHERE team_id = $1 AND unposted_text IS NOT NULL"
DROP_UNPOSTED = (
    "UPDATE channel_digests SET unposted_text = NULL WHERE platform = $1 AND ($2 = '' OR team_id = $2)"
    " AND ($3 = '' OR channel_id = $3) AND unposted_text IS NOT NULL"
)


def _at(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so stored times compare as text in both databases."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _when(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _schedule(row: Row) -> DigestSchedule:
    set_at = _when(row[7])
    assert set_at is not None  # NOT NULL
    return DigestSchedule(
        DigestKey(str(row[0]), str(row[1]), str(row[2])),
        str(row[3]),
        None if row[4] is None else int(row[4]),
        str(row[5]),
        str(row[6]),
        set_at,
        _when(row[8]),
        int(row[9]),
        _when(row[10]),
        bool(row[11]),
    )


def _key(key: DigestKey) -> tuple[str, str, str]:
    return key.platform, key.team_id, key.channel_id


class SQLDigests:
    """The Digests protocol on the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def set(self, schedule: DigestSchedule) -> None:
        s = schedule
        await self._db.execute(SET, *_key(s.key), s.period, s.weekday, s.at, s.set_by, _at(s.set_at))

    async def get(self, key: DigestKey) -> DigestSchedule | None:
        row = await self._db.fetchrow(GET, *_key(key))
        return None if row is None else _schedule(row)

    async def remove(self, key: DigestKey) -> bool:
        return bool(await self._db.fetch(REMOVE, *_key(key)))

    async def schedules(self) -> list[DigestSchedule]:
        return [_schedule(row) for row in await self._db.fetch(SCHEDULES)]

    async def claim(self, key: DigestKey, due: datetime) -> ClaimedRun | None:
        return _claimed(await self._db.fetchrow(CLAIM, *_key(key), _at(due)))

    async def claim_retry(self, key: DigestKey, now: datetime) -> ClaimedRun | None:
        return _claimed(await self._db.fetchrow(CLAIM_RETRY, *_key(key), _at(now)))

    async def claimable(self, key: DigestKey, due: datetime, retry_until: datetime | None) -> bool:
        retries = "" if retry_until is None else _at(retry_until)
        return await self._db.fetchrow(CLAIMABLE, *_key(key), _at(due), retries) is not None

    async def record_failure(
        self, key: DigestKey, due: datetime, retry_at: datetime | None, text: str | None = None
    ) -> None:
        retry = None if retry_at is None else _at(retry_at)
        await self._db.execute(RECORD_FAILURE, *_key(key), _at(due), retry, text)

    async def record_posted(self, key: DigestKey, due: datetime) -> None:
        await self._db.execute(RECORD_POSTED, *_key(key), _at(due))


def _claimed(row: Row | None) -> ClaimedRun | None:
    if row is None:
        return None
    due = _when(row[0])
    assert due is not None  # just set
    return ClaimedRun(due, _when(row[1]), int(row[2]) + 1, None if row[3] is None else str(row[3]))
