"""Which MCP servers each channel has turned on, and the audit of tool calls, for both databases (the DDL here
is the same for both)."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.sql.connection import Database, Row
from storage.tool_servers import ToolCallRecord

# A row is a server turned on in a channel; turning it off deletes the row. Who turned it on is kept for admins
# (and pseudonymized by /forget).
CREATE_CHANNEL_TOOL_SERVERS = """
CREATE TABLE channel_tool_servers (
    platform TEXT NOT NULL, team_id TEXT NOT NULL, channel_id TEXT NOT NULL, server TEXT NOT NULL,
    enabled_by TEXT NOT NULL, enabled_at TEXT NOT NULL,
    PRIMARY KEY (platform, team_id, channel_id, server)
)
"""
ENABLED = "SELECT server FROM channel_tool_servers WHERE platform = $1 AND team_id = $2 AND channel_id = $3"
ENABLE = (
    "INSERT INTO channel_tool_servers (platform, team_id, channel_id, server, enabled_by, enabled_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform, team_id, channel_id, server) DO NOTHING"
)
DISABLE = "DELETE FROM channel_tool_servers WHERE platform = $1 AND team_id = $2 AND channel_id = $3 AND server = $4"
FORGET_ENABLED_BY = "UPDATE channel_tool_servers SET enabled_by = $3 WHERE team_id = $1 AND enabled_by = $2"

# Times are fixed-width UTC text, so they compare as text in both databases.
CREATE_TOOL_CALLS = (
    """
CREATE TABLE tool_calls (
    platform TEXT NOT NULL, team_id TEXT NOT NULL, channel_id TEXT NOT NULL, user_id TEXT NOT NULL,
    server TEXT NOT NULL, tool TEXT NOT NULL, arguments TEXT NOT NULL, approved_by TEXT,
    result_chars INTEGER NOT NULL, duration_ms INTEGER NOT NULL, error TEXT, called_at TEXT NOT NULL
)
""",
    "CREATE INDEX tool_calls_team_time ON tool_calls (team_id, called_at)",
)
_CALL = (
    "platform, team_id, channel_id, user_id, server, tool, arguments, approved_by, result_chars, duration_ms, error,"
    " called_at"
)
ADD_CALL = f"INSERT INTO tool_calls ({_CALL}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
CALLS = f"SELECT {_CALL} FROM tool_calls WHERE ($1 = '' OR team_id = $1) AND called_at >= $2 ORDER BY called_at"
# /forget: the person's calls stay in the team's audit under a pseudonym, without the arguments (their words).
FORGET_CALLS = (
    "UPDATE tool_calls SET user_id = $3, approved_by = CASE WHEN approved_by = $2 THEN $3 ELSE approved_by END,"
    " arguments = 'null' WHERE team_id = $1 AND user_id = $2"
)


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _record(row: Row) -> ToolCallRecord:
    return ToolCallRecord(
        platform=row[0], team_id=row[1], channel_id=row[2], user_id=row[3], server=row[4], tool=row[5],
        arguments=row[6], approved_by=row[7], result_chars=int(row[8]), duration_ms=int(row[9]), error=row[10],
        called_at=datetime.fromisoformat(row[11]),
    )  # fmt: skip


class SQLToolServers:
    """The ToolServerChoices and ToolCallLog protocols (storage/tool_servers.py) on the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def enabled_tool_servers(self, platform: str, team_id: str, channel_id: str) -> frozenset[str]:
        """The servers turned on in the channel."""
        return frozenset(str(row[0]) for row in await self._db.fetch(ENABLED, platform, team_id, channel_id))

    async def enable_tool_server(
        self, platform: str, team_id: str, channel_id: str, server: str, by: str, now: datetime
    ) -> None:
        """Turn `server` on in the channel (already on: nothing changes)."""
        await self._db.execute(ENABLE, platform, team_id, channel_id, server, by, _at(now))

    async def disable_tool_server(self, platform: str, team_id: str, channel_id: str, server: str) -> bool:
        """Turn `server` off in the channel; False when it was not on."""
        return await self._db.execute(DISABLE, platform, team_id, channel_id, server) > 0

    async def add_tool_call(self, record: ToolCallRecord) -> None:
        """Record one call (or one refused before it ran)."""
        r = record
        await self._db.execute(
            ADD_CALL, r.platform, r.team_id, r.channel_id, r.user_id, r.server, r.tool, r.arguments, r.approved_by,
            r.result_chars, r.duration_ms, r.error, _at(r.called_at),
        )  # fmt: skip

    async def tool_calls(self, team_id: str | None, since: datetime | None) -> list[ToolCallRecord]:
        """The calls of a team (None: every team) from `since` on, oldest first."""
        start = _at(since) if since is not None else ""
        return [_record(row) for row in await self._db.fetch(CALLS, team_id or "", start)]
