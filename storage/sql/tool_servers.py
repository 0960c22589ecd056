"""Which MCP servers each channel has turned on, for both databases (the DDL here is the same for both)."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.sql.connection import Database

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


class SQLToolServers:
    """The ChannelToolServerStore protocol (bot/mcp/channels.py) on the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def enabled_tool_servers(self, platform: str, team_id: str, channel_id: str) -> frozenset[str]:
        """The servers turned on in the channel."""
        return frozenset(str(row[0]) for row in await self._db.fetch(ENABLED, platform, team_id, channel_id))

    async def enable_tool_server(
        self, platform: str, team_id: str, channel_id: str, server: str, by: str, now: datetime
    ) -> None:
        """Turn `server` on in the channel (already on: nothing changes)."""
        at = now.astimezone(UTC).isoformat(timespec="microseconds")
        await self._db.execute(ENABLE, platform, team_id, channel_id, server, by, at)

    async def disable_tool_server(self, platform: str, team_id: str, channel_id: str, server: str) -> bool:
        """Turn `server` off in the channel; False when it was not on."""
        return await self._db.execute(DISABLE, platform, team_id, channel_id, server) > 0
