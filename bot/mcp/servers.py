"""The MCP servers of MCP_SERVERS_FILE, connected on first use through the official SDK's client.

Each connection lives in a task of its own: the SDK's transports are anyio contexts that must be entered and
left in one task, and a connection outlives the turn that opened it. A call that times out, or whose server
died, closes that connection; the next use starts the server (or session) again. Closing the manager ends
every stdio server's process (the SDK closes its stdin, then terminates it).

The SDK (~27 MB with the web stack it brings: starlette, uvicorn, httpx…) is imported at the first connection, so
a bot without MCP servers never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.mcp.config import McpServerConfig, read_servers_file

if TYPE_CHECKING:
    from mcp import Client, StdioServerParameters
    from mcp.types import CallToolResult

    from bot.settings import Settings

log = logging.getLogger(__name__)


class McpCallFailed(Exception):
    """A server could not be reached or a call gave no result; the message is for the model (and the person)."""


@dataclass(frozen=True)
class McpTool:
    """One tool a server lists."""

    server: str
    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool  # the server's readOnlyHint; a tool without it may change something and needs approval


@dataclass(frozen=True)
class McpLimits:
    """How long a server may take, and how much of a result reaches the model."""

    call_seconds: float = 30.0
    connect_seconds: float = 30.0
    result_max_chars: int = 20_000


class _Connection:
    """One open session with a server, held by its own task until closed or broken."""

    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._hold(), name=f"mcp server {config.name}")

    @property
    def alive(self) -> bool:
        return not self._task.done()

    async def client(self, seconds: float) -> Client:
        return await asyncio.wait_for(asyncio.shield(self._ready), seconds)

    async def _hold(self) -> None:
        from mcp import Client

        try:
            async with Client(_target(self.config)) as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            if not isinstance(exc, asyncio.CancelledError):
                log.warning("MCP server %s: connection ended: %r", self.config.name, exc)

    async def close(self) -> None:
        self._stop.set()
        if not self._ready.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


def _target(config: McpServerConfig) -> str | StdioServerParameters:
    from mcp import StdioServerParameters

    if config.url is not None:
        return config.url
    assert config.command is not None
    return StdioServerParameters(command=config.command, args=list(config.args), env=dict(config.env) or None)


class McpServers:
    """The configured servers: lists their tools and calls them, each within the limits."""

    def __init__(self, configs: Sequence[McpServerConfig], limits: McpLimits | None = None) -> None:
        self.configs: Mapping[str, McpServerConfig] = {c.name: c for c in configs}
        self.limits = limits or McpLimits()
        self._connections: dict[str, _Connection] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> McpServers:
        """The servers of MCP_SERVERS_FILE (none when it is not set), within the configured limits."""
        path = settings.mcp_servers_file
        configs = read_servers_file(path) if path is not None else ()
        limits = McpLimits(call_seconds=settings.mcp_call_seconds, result_max_chars=settings.mcp_result_max_chars)
        return cls(configs, limits)

    async def _client(self, server: str) -> Client:
        config = self.configs.get(server)
        if config is None:
            raise McpCallFailed(f"there is no MCP server named {server!r}")
        lock = self._locks.setdefault(server, asyncio.Lock())
        async with lock:
            connection = self._connections.get(server)
            if connection is None or not connection.alive:
                if connection is not None:
                    log.info("MCP server %s: starting it again", server)
                connection = self._connections[server] = _Connection(config)
            try:
                return await connection.client(self.limits.connect_seconds)
            except Exception as exc:
                await self._drop(server, connection)
                if isinstance(exc, TimeoutError):
                    why = f"did not answer within {self.limits.connect_seconds:g} s"
                else:
                    why = f"could not be reached ({type(exc).__name__})"
                raise McpCallFailed(f"the MCP server {server} {why}; it will be tried again on the next use") from exc

    async def _drop(self, server: str, connection: _Connection) -> None:
        if self._connections.get(server) is connection:
            del self._connections[server]
        await connection.close()

    async def list_tools(self, server: str) -> tuple[McpTool, ...]:
        """The tools `server` offers (connecting to it if need be)."""
        listed = await self._request(server, "list its tools", lambda client: client.list_tools())
        return tuple(
            McpTool(
                server=server,
                name=t.name,
                description=t.description or "",
                parameters=t.input_schema,
                read_only=bool(t.annotations and t.annotations.read_only_hint),
            )
            for t in listed.tools
        )

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> str:
        """The text `tool` returns, capped to the limit; McpCallFailed with a message for the model otherwise."""
        result: CallToolResult = await self._request(
            server, f"run {tool}", lambda client: client.call_tool(tool, arguments)
        )
        text = self.capped(_text_of(result))
        if result.is_error:
            raise McpCallFailed(f"{server}.{tool} failed: {text or 'no reason given'}")
        return text

    async def _request(self, server: str, what: str, send: Any) -> Any:
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        client = await self._client(server)
        connection = self._connections.get(server)
        try:
            async with asyncio.timeout(self.limits.call_seconds):
                return await send(client)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                why = "stopped answering (its connection closed)"
                await self._broken(server, connection, what, why)
                raise McpCallFailed(self._restart_message(server, what, why)) from exc
            # The server answered with a protocol error (an unknown tool, bad arguments): the session is fine.
            raise McpCallFailed(f"the MCP server {server} could not {what}: {exc}") from exc
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                why = f"did not answer within {self.limits.call_seconds:g} s"
            else:
                why = f"stopped answering ({type(exc).__name__})"
            await self._broken(server, connection, what, why)
            raise McpCallFailed(self._restart_message(server, what, why)) from exc

    async def _broken(self, server: str, connection: _Connection | None, what: str, why: str) -> None:
        log.warning("MCP server %s %s while asked to %s", server, why, what)
        if connection is not None:
            await self._drop(server, connection)

    @staticmethod
    def _restart_message(server: str, what: str, why: str) -> str:
        return f"the MCP server {server} {why} while asked to {what}; it will be started again on the next use"

    def capped(self, text: str) -> str:
        """`text` cut to the result limit, saying so."""
        limit = self.limits.result_max_chars
        if len(text) <= limit:
            return text
        return f"{text[:limit]}\n[cut: the result had {len(text)} characters; the first {limit} are shown]"

    async def close(self) -> None:
        """End every connection (and every stdio server's process)."""
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.close()


def _text_of(result: CallToolResult) -> str:
    from mcp.types import EmbeddedResource, TextContent, TextResourceContents

    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResource) and isinstance(block.resource, TextResourceContents):
            parts.append(block.resource.text)
        else:
            parts.append(f"[{block.type} content not shown]")
    return "\n".join(parts)
