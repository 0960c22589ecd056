"""Assistant threads' viewed channels (storage/assistant_threads.py) for both databases: one DDL and one
statement each, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.assistant_threads import PaneThread, ViewedChannel
from storage.sql.connection import Database

# A thread is keyed as Slack keys it (its DM channel and thread_ts); team and user are kept for /forget.
CREATE_ASSISTANT_THREADS = """
CREATE TABLE assistant_threads (
    channel_id TEXT NOT NULL, thread_ts TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL,
    viewed_channel TEXT, viewed_team TEXT, viewed_enterprise TEXT,
    titled INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, thread_ts)
)
"""
_KEEP = "COALESCE(NULLIF(excluded.{0}, ''), assistant_threads.{0})"  # a call that does not know it keeps it
REMEMBER = (
    "INSERT INTO assistant_threads (channel_id, thread_ts, team_id, user_id, viewed_channel, viewed_team,"
    " viewed_enterprise, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (channel_id, thread_ts) DO UPDATE SET viewed_channel = excluded.viewed_channel,"
    " viewed_team = excluded.viewed_team, viewed_enterprise = excluded.viewed_enterprise,"
    f" updated_at = excluded.updated_at, team_id = {_KEEP.format('team_id')}, user_id = {_KEEP.format('user_id')}"
)
VIEWED = (
    "SELECT viewed_channel, viewed_team, viewed_enterprise FROM assistant_threads"
    " WHERE channel_id = $1 AND thread_ts = $2"
)
# The first question titles the thread: one upsert that changes (and returns) a row only while untitled.
CLAIM_TITLE = (
    "INSERT INTO assistant_threads (channel_id, thread_ts, team_id, user_id, titled, updated_at)"
    " VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (channel_id, thread_ts) DO UPDATE SET titled = 1,"
    " updated_at = excluded.updated_at WHERE assistant_threads.titled = 0 RETURNING 1"
)
FORGET_ASSISTANT_THREADS = "DELETE FROM assistant_threads WHERE team_id = $1 AND user_id = $2 RETURNING 1"


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class SQLAssistantThreads:
    """The AssistantThreads protocol on the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def remember(self, thread: PaneThread, viewed: ViewedChannel | None, now: datetime) -> None:
        t, v = thread, viewed
        await self._db.execute(
            REMEMBER, t.channel_id, t.thread_ts, t.team_id, t.user_id,
            v.channel_id if v else None, v.team_id if v else None, v.enterprise_id if v else None, _at(now),
        )  # fmt: skip

    async def viewed(self, channel_id: str, thread_ts: str) -> ViewedChannel | None:
        row = await self._db.fetchrow(VIEWED, channel_id, thread_ts)
        if row is None or not row[0]:
            return None
        return ViewedChannel(str(row[0]), str(row[1] or ""), str(row[2] or ""))

    async def claim_title(self, thread: PaneThread, now: datetime) -> bool:
        t = thread
        claimed = await self._db.fetchrow(CLAIM_TITLE, t.channel_id, t.thread_ts, t.team_id, t.user_id, _at(now))
        return claimed is not None
