"""An MCP tool that acts, called by the model in a real console turn: asked, approved by the next typed line, run,
recorded, and its result given back to the model; the same tool in a channel where its server is off is not offered."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from bot.app import open_engine
from tests.fakes.mcp_servers import SCRIPT
from tests.fakes.openai_server import CallTool, FakeOpenAI, Reply


def servers_file(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"team": {"command": sys.executable, "args": [str(SCRIPT)]}}}), "utf-8")
    return path


async def run_console(settings: Any, typed: str, tmp_path: Path) -> str:
    out = io.StringIO()
    async with open_engine(settings) as engine:
        identity = ConsoleIdentity(user_id="ada", is_admin=True)
        adapter = ConsoleAdapter(engine, identity, stdin=io.StringIO(typed), stdout=out, files_dir=tmp_path)
        assert await adapter.run() == 0
    return out.getvalue()


async def test_the_asker_approves_an_acting_tool_on_the_console_and_the_model_gets_its_result(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.enqueue(
        Reply("", tool_calls=(CallTool("team__create_ticket", {"title": "printer jammed"}),)),
        Reply("Done: ticket opened."),
    )
    settings = make_settings(mcp_servers_file=servers_file(tmp_path))
    out = await run_console(settings, "/tools enable team\nopen a ticket: printer jammed\ny\n", tmp_path)
    assert 'Allow team.create_ticket("title": "printer jammed")? [y/N]' in out
    assert "Done: ticket opened." in out
    requests = fake_openai.chat_requests()
    assert any(t["function"]["name"] == "team__create_ticket" for t in requests[0]["tools"])
    tool_results = [m["content"] for m in requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_results) == 1 and "opened: printer jammed" in tool_results[0]


async def test_a_channel_where_the_server_is_off_is_not_offered_its_tools(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.enqueue(Reply("No tools here."))
    settings = make_settings(mcp_servers_file=servers_file(tmp_path))
    out = await run_console(settings, "open a ticket\n", tmp_path)
    assert "No tools here." in out and "Allow " not in out
    assert "tools" not in fake_openai.chat_requests()[0]
