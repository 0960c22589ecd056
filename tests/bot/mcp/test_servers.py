"""MCP servers through the official SDK: real servers (stdio child, Streamable HTTP on loopback) listed and called;
a crash, a timeout, an error and a huge result each end as a message for the model, and the server comes back."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from bot.mcp.config import McpServerConfig
from bot.mcp.servers import McpCallFailed, McpLimits, McpServers
from tests.fakes.mcp_servers import http_server, stdio_server


@pytest.fixture
async def http_config() -> AsyncIterator[McpServerConfig]:
    async with http_server() as config:
        yield config


@pytest.fixture
async def servers(http_config: McpServerConfig) -> AsyncIterator[McpServers]:
    manager = McpServers([stdio_server(), http_config], McpLimits(call_seconds=5, result_max_chars=1000))
    yield manager
    await manager.close()


@pytest.mark.parametrize("server", ["team", "web"])
async def test_tools_are_listed_with_read_only_hints(servers: McpServers, server: str) -> None:
    tools = {t.name: t for t in await servers.list_tools(server)}
    assert tools["lookup_order"].read_only and not tools["create_ticket"].read_only
    assert tools["lookup_order"].parameters["properties"]["order_id"]["type"] == "string"
    assert "order" in tools["lookup_order"].description


@pytest.mark.parametrize("server", ["team", "web"])
async def test_a_call_returns_the_tools_text(servers: McpServers, server: str) -> None:
    assert await servers.call(server, "lookup_order", {"order_id": "A-7"}) == "order A-7: shipped"
    assert await servers.call(server, "create_ticket", {"title": "printer"}) == "ticket #1 opened: printer"


async def test_a_server_is_started_only_when_first_used(servers: McpServers) -> None:
    assert servers._connections == {}
    await servers.call("team", "pid", {})
    assert set(servers._connections) == {"team"}


async def test_a_tool_error_is_told_to_the_model(servers: McpServers) -> None:
    with pytest.raises(McpCallFailed, match=r"team\.broken failed: .*the ticket system is down"):
        await servers.call("team", "broken", {})
    assert await servers.call("team", "lookup_order", {"order_id": "1"}) == "order 1: shipped"


async def test_an_unknown_tool_is_an_error_for_the_model_and_the_session_stays(servers: McpServers) -> None:
    first = await servers.call("team", "pid", {})
    with pytest.raises(McpCallFailed, match="team"):
        await servers.call("team", "no_such_tool", {})
    assert await servers.call("team", "pid", {}) == first


@pytest.mark.parametrize("server", ["team", "web"])
async def test_a_large_result_is_cut_before_it_reaches_the_model(servers: McpServers, server: str) -> None:
    text = await servers.call(server, "big", {"size": 50_000})
    assert text.startswith("x" * 1000)
    assert text.endswith("[cut: the result had 50000 characters; the first 1000 are shown]")
    assert len(text) < 1100


async def test_a_crashed_stdio_server_fails_the_call_and_is_started_again(servers: McpServers) -> None:
    first = await servers.call("team", "pid", {})
    with pytest.raises(McpCallFailed, match="started again on the next use"):
        await servers.call("team", "crash", {})
    second = await servers.call("team", "pid", {})
    assert second != first
    with pytest.raises(ProcessLookupError):
        os.kill(int(first), 0)


async def test_a_slow_server_times_out_and_is_started_again() -> None:
    manager = McpServers([stdio_server()], McpLimits(call_seconds=2))
    try:
        first = await manager.call("team", "pid", {})
        with pytest.raises(McpCallFailed, match=r"did not answer within 2 s while asked to run slow"):
            await manager.call("team", "slow", {"seconds": 30})
        assert await manager.call("team", "pid", {}) != first
    finally:
        await manager.close()


async def test_an_http_server_that_went_away_fails_the_call() -> None:
    async with http_server() as config:
        manager = McpServers([config], McpLimits(call_seconds=5, connect_seconds=5))
        try:
            assert await manager.call("web", "lookup_order", {"order_id": "1"}) == "order 1: shipped"
            with pytest.raises(McpCallFailed, match="the MCP server web"):
                await manager.call("web", "crash", {})
        finally:
            await manager.close()


async def test_a_server_that_cannot_start_is_a_message_not_a_crash() -> None:
    manager = McpServers([McpServerConfig("gone", command="/nonexistent/mcp-server")], McpLimits(connect_seconds=5))
    try:
        with pytest.raises(McpCallFailed, match="the MCP server gone could not be reached"):
            await manager.list_tools("gone")
    finally:
        await manager.close()


async def test_stdio_servers_end_with_the_manager() -> None:
    manager = McpServers([stdio_server()])
    pid = int(await manager.call("team", "pid", {}))
    await manager.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
