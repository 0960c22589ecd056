"""Which MCP servers a channel uses: none until an admin turns one on there (/tools enable <server>)."""

from __future__ import annotations

from bot.clock import Clock
from bot.errors import BadCommand
from bot.mcp.servers import McpServers
from bot.messages import IncomingMessage
from storage.tool_servers import ToolServerChoices


class ChannelToolServers:
    """The servers on in a message's channel; a change is recorded as made by its author, now."""

    def __init__(self, store: ToolServerChoices, servers: McpServers, clock: Clock) -> None:
        self._store = store
        self.servers = servers
        self._clock = clock

    async def enabled(self, message: IncomingMessage) -> frozenset[str]:
        """The configured servers turned on in the message's channel (one taken out of the file is left out)."""
        chosen = await self._store.enabled_tool_servers(message.platform, message.team_id, message.channel_id)
        return frozenset(name for name in chosen if name in self.servers.configs)

    async def enable(self, message: IncomingMessage, server: str) -> None:
        """Turn `server` on in the message's channel."""
        self._known(server)
        at = (message.platform, message.team_id, message.channel_id)
        await self._store.enable_tool_server(*at, server, message.author.id, self._clock())

    async def disable(self, message: IncomingMessage, server: str) -> bool:
        """Turn `server` off in the message's channel; False when it was not on."""
        self._known(server)
        return await self._store.disable_tool_server(message.platform, message.team_id, message.channel_id, server)

    def _known(self, server: str) -> None:
        if server not in self.servers.configs:
            names = ", ".join(self.servers.configs) or "none (MCP_SERVERS_FILE is not set)"
            raise BadCommand(f"There is no MCP server named {server!r}. Configured: {names}.")
