"""The MCP tools as the tool loop's tools: named for the model, acting unless read-only, kept to the channels
where their server is on, and run through the loop's registry with the asker's approval."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.mcp.approval import AskerApproval
from bot.mcp.audit import AuditedCalls
from bot.mcp.channels import ChannelToolServers
from bot.mcp.config import McpServerConfig
from bot.mcp.servers import McpServers
from storage import Store
from tests.fakes.mcp_servers import stdio_server
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message

registry = pytest.importorskip("bot.tools.registry", reason="the tool loop (bot/tools) is not merged yet")
source_module = pytest.importorskip("bot.mcp.source")
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
async def channels(store: Store) -> AsyncIterator[ChannelToolServers]:
    servers = McpServers([stdio_server(), McpServerConfig("gone", command="/nonexistent/mcp-server")])
    yield ChannelToolServers(store.tool_servers, servers, lambda: NOW)
    await servers.close()


async def test_tools_are_named_per_server_and_act_unless_read_only(channels: ChannelToolServers, store: Store) -> None:
    calls = AuditedCalls(channels.servers, store.tool_servers, lambda: NOW)
    source = await source_module.McpToolSource.listed(calls, channels)
    tools = {t.name: t for t in source.tools()}
    assert not tools["team__lookup_order"].acts and tools["team__create_ticket"].acts
    assert not any(name.startswith("gone__") for name in tools)  # unreachable: offers none, the bot starts


async def test_a_call_runs_where_its_server_is_on_and_is_told_to_the_model(
    channels: ChannelToolServers, store: Store
) -> None:
    calls = AuditedCalls(channels.servers, store.tool_servers, lambda: NOW)
    source = await source_module.McpToolSource.listed(calls, channels)
    tools = registry.ToolRegistry([source], AskerApproval(calls, 120))
    ask = message("where is A-7?", user="ann")
    use = registry.ToolUse(ask, RecordingResponder())
    call = registry.ToolCall(id="c1", name="team__lookup_order", arguments=json.dumps({"order_id": "A-7"}))
    off = await tools.call(call, use)
    assert "not on in this channel" in off.text
    await channels.enable(message("/tools enable team", admin=True), "team")
    on = await tools.call(call, use)
    assert "order A-7: shipped" in on.text
    acting = registry.ToolCall(id="c2", name="team__create_ticket", arguments=json.dumps({"title": "x"}))
    refused = await tools.call(acting, use)  # the recording responder cannot ask: not approved
    assert "was not approved" in refused.text
    errors = [c.error for c in await store.tool_servers.tool_calls(None, None)]
    assert errors == [None, "this platform cannot ask for approval yet, so tools that act do not run here"]


async def test_a_channel_is_offered_only_the_tools_of_servers_on_there_and_nobody_is_asked_about_others(
    channels: ChannelToolServers, store: Store
) -> None:
    calls = AuditedCalls(channels.servers, store.tool_servers, lambda: NOW)
    source = await source_module.McpToolSource.listed(calls, channels)
    tools = registry.ToolRegistry([source], AskerApproval(calls, 120))
    use = registry.ToolUse(message("open a ticket", user="ann"), RecordingResponder())
    assert await tools.offered(use) == ()  # the server is off here: the model is not told of its tools
    acting = registry.ToolCall(id="c1", name="team__create_ticket", arguments=json.dumps({"title": "x"}))
    refused = await tools.call(acting, use)  # a name the model made up anyway: refused before any approval
    assert "not on in this channel" in refused.text
    assert await store.tool_servers.tool_calls(None, None) == []  # nobody was asked, nothing ran
    await channels.enable(message("/tools enable team", admin=True), "team")
    assert {t.name for t in await tools.offered(use)} >= {"team__lookup_order", "team__create_ticket"}
