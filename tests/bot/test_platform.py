"""Platforms as plug-ins: one list, bot/ free of adapters/, and a history each platform can be asked for."""

from __future__ import annotations

import ast
import asyncio
import io
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.console.adapter import ConsoleIdentity, LocalDirectory
from adapters.console.platform import ConsolePlatform
from bot.app import PLATFORMS, configured_platforms
from bot.chat.engine import Engine
from bot.directory import HistoryMessage, OnlyThisChannel
from bot.errors import NotSupported
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message

BOT = Path(__file__).resolve().parents[2] / "bot"
COMPOSITION_ROOT = BOT / "app.py"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_only_the_composition_root_imports_adapters() -> None:
    offenders = {
        str(path.relative_to(BOT.parent)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "adapters")
        for path in BOT.rglob("*.py")
        if path != COMPOSITION_ROOT
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}
    assert any(m.startswith("adapters.") for m in imported_modules(COMPOSITION_ROOT))  # the rule checks something


def test_every_platform_is_in_the_one_list_with_its_admin_hint_and_help() -> None:
    assert PLATFORMS.names() == ("discord", "slack", "console")
    for platform in PLATFORMS:
        assert platform.becoming_admin and platform.help_intro.endswith("Commands:")
    assert PLATFORMS.help_intro("console").startswith("Type a message to chat")
    assert PLATFORMS.becoming_admin("nowhere") == ""


def test_the_settings_configure_platforms_and_the_console_is_the_fallback(make_settings: Any) -> None:
    plain = make_settings()
    both = make_settings(discord_token="discord-test-token", slack_bot_token="xoxb-test")
    assert configured_platforms(plain) == []
    assert configured_platforms(both) == ["discord", "slack"]
    assert PLATFORMS.fallback.name == "console"


async def test_the_console_history_is_its_stored_conversation(engine: Engine, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply("Noted: the launch moves to Friday."))
    asked = replace(message("The launch moves to Friday.", channel="launch"), created_at=engine.now())
    await engine.handle(asked, RecordingResponder())
    directory = LocalDirectory(engine.stored_messages)

    read = [m async for m in directory.history("launch")]
    later = [m async for m in directory.history("launch", since=engine.now() + timedelta(hours=1))]
    elsewhere = [m async for m in directory.history("other")]

    assert [(m.author_id, m.author_name, m.text) for m in read] == [  # a channel's newest first (the cap keeps those)
        ("teambot", "teambot", "Noted: the launch moves to Friday."),
        ("u1", "u1", "The launch moves to Friday."),
    ]
    assert all(isinstance(m, HistoryMessage) and m.message_id and m.link is None for m in read)
    assert later == [] and elsewhere == []


async def test_a_platform_without_history_says_it_is_not_supported_yet() -> None:
    with pytest.raises(NotSupported, match="not supported yet"):
        [m async for m in OnlyThisChannel("c1").history("c1")]


async def test_the_console_serves_through_the_platform_protocol(engine: Engine, tmp_path: Path) -> None:
    out = io.StringIO()
    console = ConsolePlatform(ConsoleIdentity(), stdin=io.StringIO("/help\n"), stdout=out, files_dir=tmp_path)

    await console.serve(engine, engine.settings, asyncio.Event())

    assert "Type a message to chat; this channel is the conversation" in out.getvalue()
    assert await console.team_names(engine.settings) == {"local": "this machine's console"}
