"""The MCP servers' tools as tools of the tool loop (bot/tools/registry.py): one more ToolSource.

Thin on purpose: the client, limits, audit and approval live in bot/mcp; this only names each tool for the
model (`<server>__<tool>`, within OpenAI's 64 characters of [a-zA-Z0-9_-]), keeps a server's tools to the
channels where it is on, and turns a failed call into the loop's ToolFailed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.mcp.audit import AuditedCalls
from bot.mcp.channels import ChannelToolServers
from bot.mcp.servers import McpCallFailed
from bot.tools.registry import ToolFailed, ToolResult, ToolUse

log = logging.getLogger(__name__)
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class McpFunction:
    """One MCP tool as the model sees it; `acts` unless the server marked it readOnlyHint."""

    name: str
    description: str
    parameters: dict[str, Any]
    acts: bool
    server: str
    tool: str
    _calls: AuditedCalls = field(repr=False)
    _channels: ChannelToolServers = field(repr=False)

    def status(self, arguments: dict[str, Any]) -> str:
        """The status line while it runs."""
        return f"using {self.server}'s {self.tool}…"

    async def available(self, use: ToolUse) -> bool:
        """Offered only where an admin turned its server on (/tools enable)."""
        return self.server in await self._channels.enabled(use.message)

    async def run(self, arguments: dict[str, Any], use: ToolUse) -> ToolResult:
        """Call the tool for the asker (who approved it when it acts); ToolFailed with the reason otherwise."""
        message = use.message
        if self.server not in await self._channels.enabled(message):
            raise ToolFailed(
                f"{self.server}'s tools are not on in this channel (an admin can: /tools enable {self.server})"
            )
        try:
            text = await self._calls.call(
                message, self.server, self.tool, arguments, message.author.id if self.acts else None
            )
        except McpCallFailed as exc:
            raise ToolFailed(str(exc)) from exc
        return ToolResult(source=f"the {self.server} MCP server's {self.tool} tool", text=text)


class McpToolSource:
    """Every configured server's tools, listed once at start (a server that cannot be reached offers none)."""

    def __init__(self, functions: Sequence[McpFunction]) -> None:
        self._functions = tuple(functions)

    def tools(self) -> Sequence[McpFunction]:
        """The tools it offers."""
        return self._functions

    @classmethod
    async def listed(cls, calls: AuditedCalls, channels: ChannelToolServers) -> McpToolSource:
        """List each server's tools now; one that fails is logged and left out until the next start."""
        functions: list[McpFunction] = []
        for server in calls.servers.configs:
            try:
                tools = await calls.servers.list_tools(server)
            except McpCallFailed as exc:
                log.warning("MCP server %s offers no tools until the next start: %s", server, exc)
                continue
            for t in tools:
                name = _NOT_A_NAME.sub("_", f"{server}__{t.name}")[:64]
                functions.append(
                    McpFunction(name, t.description, t.parameters, not t.read_only, server, t.name, calls, channels)
                )
        return cls(functions)
