"""/tools: the configured MCP servers and their tools, off in every channel until an admin turns one on there;
the choice is stored (it survives a restart) and /forget pseudonymizes who made it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bot.app import open_engine
from bot.chat.engine import Engine
from bot.settings import Settings
from tests.fakes.mcp_servers import SCRIPT
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


async def say(engine: Engine, line: str, **who: Any) -> RecordingResponder:
    responder = RecordingResponder()
    await engine.handle(message(line, **who), responder)
    return responder


def servers_file(tmp_path: Path, servers: dict[str, Any]) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}), "utf-8")
    return path


def team_server() -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(SCRIPT)]}


def mcp_settings(make_settings: Any, tmp_path: Path) -> Settings:
    gone = {"command": "/nonexistent/mcp-server"}
    return make_settings(mcp_servers_file=servers_file(tmp_path, {"team": team_server(), "gone": gone}))  # type: ignore[no-any-return]


async def test_tools_lists_each_server_off_here_with_its_tools(make_settings: Any, tmp_path: Path) -> None:
    async with open_engine(mcp_settings(make_settings, tmp_path)) as engine:
        text = (await say(engine, "/tools")).texts[-1][0]
    team = next(line for line in text.splitlines() if line.startswith("• team:"))
    assert team.startswith("• team: off here; ")
    assert "lookup_order (reads)" in team and "create_ticket (acts: asks the asker first)" in team
    gone = next(line for line in text.splitlines() if line.startswith("• gone:"))
    assert gone.startswith("• gone: off here; its tools cannot be listed now: the MCP server gone could not be")


async def test_an_admin_turns_a_server_on_for_one_channel_and_it_stays_on(make_settings: Any, tmp_path: Path) -> None:
    settings = mcp_settings(make_settings, tmp_path)
    async with open_engine(settings) as engine:
        said = await say(engine, "/tools enable team", admin=True)
        assert said.texts[-1][0] == "team's tools are on in this channel."
    async with open_engine(settings) as engine:
        here = (await say(engine, "/tools")).texts[-1][0]
        elsewhere = (await say(engine, "/tools", channel="c2")).texts[-1][0]
        assert "• team: on here;" in here and "• team: off here;" in elsewhere
        assert (await say(engine, "/tools disable team", admin=True)).texts[-1][0] == (
            "team's tools are now off in this channel."
        )
        assert (await say(engine, "/tools disable team", admin=True)).texts[-1][0] == (
            "team's tools are already off in this channel."
        )
        assert "• team: off here;" in (await say(engine, "/tools")).texts[-1][0]


async def test_only_admins_turn_servers_on_or_off(make_settings: Any, tmp_path: Path) -> None:
    async with open_engine(mcp_settings(make_settings, tmp_path)) as engine:
        refused = await say(engine, "/tools enable team")
        assert refused.errors[0].startswith("Only admins can turn tools on or off; /tools is open to everyone.")
        assert "• team: off here;" in (await say(engine, "/tools")).texts[-1][0]


async def test_an_unknown_server_or_missing_name_is_a_usage_error(make_settings: Any, tmp_path: Path) -> None:
    async with open_engine(mcp_settings(make_settings, tmp_path)) as engine:
        unknown = await say(engine, "/tools enable tickets", admin=True)
        assert unknown.errors[0] == "There is no MCP server named 'tickets'. Configured: team, gone."
        missing = await say(engine, "/tools enable", admin=True)
        assert missing.errors[0] == (
            "/tools enable takes <server>.\nUsage: /tools [enable <server> | disable <server>]"
        )


async def test_without_a_servers_file_tools_says_so(engine: Engine) -> None:
    text = (await say(engine, "/tools")).texts[-1][0]
    assert text == "No MCP servers are configured (MCP_SERVERS_FILE is not set)."
    refused = await say(engine, "/tools enable team", admin=True)
    assert refused.errors[0] == ("There is no MCP server named 'team'. Configured: none (MCP_SERVERS_FILE is not set).")
