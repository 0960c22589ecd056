"""What the store keeps of team tools: which MCP servers each channel turned on, and every call made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ToolServerChoices(Protocol):
    """Which MCP servers are on in each channel (off unless an admin turned them on)."""

    async def enabled_tool_servers(self, platform: str, team_id: str, channel_id: str) -> frozenset[str]:
        """The servers turned on in the channel."""

    async def enable_tool_server(
        self, platform: str, team_id: str, channel_id: str, server: str, by: str, now: datetime
    ) -> None:
        """Turn `server` on in the channel (already on: nothing changes)."""

    async def disable_tool_server(self, platform: str, team_id: str, channel_id: str, server: str) -> bool:
        """Turn `server` off in the channel; False when it was not on."""


@dataclass(frozen=True)
class ToolCallRecord:
    """One MCP tool call as the audit keeps it: who asked where, what ran with which arguments (JSON), who
    approved it (None: a read-only tool needs no approval), how much it returned, how long it took, what failed."""

    platform: str
    team_id: str
    channel_id: str
    user_id: str
    server: str
    tool: str
    arguments: str
    approved_by: str | None
    result_chars: int
    duration_ms: int
    error: str | None
    called_at: datetime


class ToolCallLog(Protocol):
    """The audit of MCP tool calls."""

    async def add_tool_call(self, record: ToolCallRecord) -> None:
        """Record one call (or one refused before it ran)."""

    async def tool_calls(self, team_id: str | None, since: datetime | None) -> list[ToolCallRecord]:
        """The calls of a team (None: every team) from `since` on, oldest first."""


class ToolServers(ToolServerChoices, ToolCallLog, Protocol):
    """Both: what the store keeps of team tools."""
