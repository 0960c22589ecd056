"""What the store keeps of team tools: which MCP servers each channel turned on."""

from __future__ import annotations

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
