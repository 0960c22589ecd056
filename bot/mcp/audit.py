"""Every MCP tool call recorded for the team's audit: who asked where, what ran, who approved, size, time, error."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bot.clock import Clock
from bot.mcp.servers import McpCallFailed, McpServers
from bot.messages import IncomingMessage
from storage.tool_servers import ToolCallLog, ToolCallRecord


class AuditedCalls:
    """Calls MCP tools for a person's message and records each call, whether it gave a result or failed."""

    def __init__(
        self,
        servers: McpServers,
        log: ToolCallLog,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = servers
        self._log = log
        self._clock = clock
        self._monotonic = monotonic

    async def call(
        self, message: IncomingMessage, server: str, tool: str, arguments: dict[str, Any], approved_by: str | None
    ) -> str:
        """The tool's (capped) text; McpCallFailed with a message for the model otherwise. Recorded either way."""
        started = self._monotonic()
        text, error = "", None
        try:
            text = await self.servers.call(server, tool, arguments)
            return text
        except McpCallFailed as exc:
            error = str(exc)
            raise
        finally:
            elapsed_ms = round((self._monotonic() - started) * 1000)
            await self._record(message, server, tool, arguments, approved_by, len(text), elapsed_ms, error)

    async def refused(
        self, message: IncomingMessage, server: str, tool: str, arguments: dict[str, Any], why: str
    ) -> None:
        """Record a call that did not run (not approved)."""
        await self._record(message, server, tool, arguments, None, 0, 0, why)

    async def _record(
        self,
        message: IncomingMessage,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        approved_by: str | None,
        result_chars: int,
        duration_ms: int,
        error: str | None,
    ) -> None:
        await self._log.add_tool_call(
            ToolCallRecord(
                platform=message.platform,
                team_id=message.team_id,
                channel_id=message.channel_id,
                user_id=message.author.id,
                server=server,
                tool=tool,
                arguments=json.dumps(arguments, ensure_ascii=False, sort_keys=True),
                approved_by=approved_by,
                result_chars=result_chars,
                duration_ms=duration_ms,
                error=error,
                called_at=self._clock(),
            )
        )
