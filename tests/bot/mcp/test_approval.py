"""A tool that acts runs only when the asker allows it: the console asks `Allow <server>.<tool>(<args>)? [y/N]`
and the next typed line answers; no answer in TOOL_APPROVAL_SECONDS is no; every refusal is in the audit."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.console.adapter import ConsoleResponder
from bot.mcp.approval import AskerApproval, question
from bot.mcp.audit import AuditedCalls
from bot.mcp.servers import McpServers
from bot.tools.registry import ToolResult
from bot.tools.registry import ToolUse as Use
from storage import Store
from tests.fakes.mcp_servers import stdio_server
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@dataclass
class Ticket:
    """The tool the loop would pass: an MCP tool that acts."""

    server: str = "team"
    tool: str = "create_ticket"
    name: str = "team__create_ticket"
    description: str = "Open a ticket."
    parameters: dict[str, Any] = field(default_factory=dict)
    acts: bool = True

    def status(self, arguments: dict[str, Any]) -> str:
        return "opening a ticket…"

    async def run(self, arguments: dict[str, Any], use: Use) -> ToolResult:
        raise AssertionError("approval never runs the tool")


@pytest.fixture
async def calls(store: Store) -> AsyncIterator[AuditedCalls]:
    servers = McpServers([stdio_server()])
    yield AuditedCalls(servers, store.tool_servers, lambda: NOW)
    await servers.close()


def console(*typed: str | None) -> tuple[ConsoleResponder, io.StringIO]:
    out = io.StringIO()
    responder = ConsoleResponder(out, Path("unused"))
    responder.lines = asyncio.Queue()
    for line in typed:
        responder.lines.put_nowait(line)
    return responder, out


def test_the_question_shows_the_tool_and_its_arguments() -> None:
    assert question("team", "create_ticket", {"title": "printer", "urgent": True}) == (
        'Allow team.create_ticket("title": "printer", "urgent": true)? [y/N]'
    )
    assert question("team", "ping", {}) == "Allow team.ping()? [y/N]"
    assert question("team", "t", {"x": "y" * 2000}).endswith("…)? [y/N]")


@pytest.mark.parametrize("typed", ["y\n", "yes\n", " Y \n"])
async def test_yes_on_the_console_allows_the_call(calls: AuditedCalls, store: Store, typed: str) -> None:
    responder, out = console(typed)
    allowed = await AskerApproval(calls, 120).approve(Ticket(), {"title": "printer"}, Use(message("x"), responder))
    assert allowed
    assert out.getvalue() == 'Allow team.create_ticket("title": "printer")? [y/N] '
    assert await store.tool_servers.tool_calls(None, None) == []  # the call itself is recorded when it runs


@pytest.mark.parametrize("typed", ["\n", "n\n", "no\n", "sure\n", None])
async def test_anything_but_yes_refuses_and_is_recorded(calls: AuditedCalls, store: Store, typed: str | None) -> None:
    responder, _ = console(typed)
    use = Use(message("x", user="ann"), responder)
    assert not await AskerApproval(calls, 120).approve(Ticket(), {"title": "printer"}, use)
    [refused] = await store.tool_servers.tool_calls(None, None)
    assert (refused.user_id, refused.tool, refused.error) == ("ann", "create_ticket", "not approved by ann")


async def test_no_answer_in_time_is_a_refusal(calls: AuditedCalls, store: Store) -> None:
    responder, out = console()
    assert not await AskerApproval(calls, 0.1).approve(Ticket(), {}, Use(message("x"), responder))
    assert out.getvalue().endswith("\n(no answer: not allowed)\n")
    [refused] = await store.tool_servers.tool_calls(None, None)
    assert refused.error == "no answer in 0.1 s"


async def test_a_platform_that_cannot_ask_yet_refuses(calls: AuditedCalls, store: Store) -> None:
    assert not await AskerApproval(calls, 120).approve(Ticket(), {}, Use(message("x"), RecordingResponder()))
    [refused] = await store.tool_servers.tool_calls(None, None)
    assert refused.error == "this platform cannot ask for approval yet, so tools that act do not run here"
