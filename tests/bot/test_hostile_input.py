"""What people paste: every input gets a clear answer, nothing stored is corrupted, no stack trace."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import open_engine
from bot.billing.prices import PriceTable
from bot.chat.engine import Engine
from bot.commands import parse_command_line
from bot.settings import Settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.responder import RecordingResponder
from tests.harness.audio import make_audio
from tests.harness.conversations import history
from tests.harness.media import bytes_attachment
from tests.harness.messages import message

WEIRD = [
    "Robert'); DROP TABLE messages;--",
    "{x.__class__.__mro__} {{0}} %s %(name)s ${HOME} `rm -rf /`",
    "\u200b\u200c\u200d zero\u2060width \u202eevil\u202c text",
    "e\u0301\u0301\u0301 combining, 🧑‍🤝‍🧑 emoji, עברית RTL, 中文",
    "\x00 NUL and \x1b[31m escape",
]


async def ledger_rows(db_url: str) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        return db.execute("SELECT kind, model, cost_nanos, state FROM usage_ledger").fetchall()


async def say(engine: Engine, text: str, **who: Any) -> RecordingResponder:
    responder = RecordingResponder()
    await engine.handle(message(text, **who), responder)
    return responder


@pytest.mark.parametrize("text", WEIRD)
async def test_strange_text_round_trips_exactly_through_history(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings, text: str
) -> None:
    r = await say(engine, text, user=text[:20])
    assert r.errors == [] and r.replies == [f"echo: {text}"]
    assert await history(settings, message("x").conversation_key) == [("user", text), ("assistant", f"echo: {text}")]


async def test_a_100000_character_message_is_refused_clearly_and_not_stored(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    r = await say(engine, "word " * 20_000)
    assert len(r.errors) == 1 and "tokens; this bot reads at most" in r.errors[0]
    assert fake_openai.chat_requests() == []
    assert await history(settings, message("x").conversation_key) == []


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_messages_get_a_hint_not_a_model_call(engine: Engine, fake_openai: FakeOpenAI, text: str) -> None:
    r = await say(engine, text)
    assert r.texts[0][0].startswith("I'm here.") and fake_openai.chat_requests() == []


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("/prompt", "Usage: /prompt save"),
        ("/prompt frobnicate x", "Usage: /prompt save"),
        ("/prompt save", "Name the prompt and give its text."),
        ("/prompt save Bad/Name hello", "'bad/name' is not a prompt name"),
        ("/prompt save p", "The prompt text is empty."),
        ("/prompt diff p v1", "Usage: /prompt save"),
        ("/prompt rate x 3", "'x' is not a run number"),
        ("/quota set", "Not a quota change"),
        (
            "/usage everything",
            "/usage takes nothing (your own) or team (admins), not 'everything'.\nUsage: /usage [team]",
        ),
        ("/persona dance", "/persona takes show, set, use or clear, not 'dance'.\nUsage: /persona show"),
        ("/model swap gpt-4o", "/model takes show or set, not 'swap'.\nUsage: /model show | set <name>"),
        ("/model set", "Name the model after /model set. Allowed here: gpt-4.1-mini.\nUsage: /model show"),
        ("/transcribe speed=2", "/transcribe takes language=, summary and prompt=, not 'speed=2'"),
        ("/image", "Describe the image after /image."),
        ("/search", "Say what to look for after /search.\nUsage: /search"),
        ("/search plans channel:", "'' is not a channel"),
        ("/search plans channel:<#>", "'<#>' is not a channel"),
        ("/search plans days:-1", "days:-1 must be a whole number of days from 1 to 3,650."),
        ("/search plans days:99999", "days:99999 must be"),
    ],
)
async def test_wrong_arguments_get_a_usage_line(engine: Engine, line: str, usage: str) -> None:
    r = await say(engine, line, admin=True)
    assert len(r.errors) == 1 and usage in r.errors[0], r.errors


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("huge.mp3", b"\xff\xfb" + b"\x00" * (30 * 1024 * 1024), "huge.mp3 is 30 MB; the limit is 20 MB."),
    ],
)
async def test_a_file_over_the_size_cap_is_refused_before_download(
    make_settings: Any, name: str, data: bytes, error: str
) -> None:
    async with open_engine(make_settings(transcribe_max_mb=20)) as engine:
        r = await say(engine, "/transcribe", attachments=(bytes_attachment(name, data),))
    assert r.errors == [error]


async def test_a_truncated_audio_file_is_transcribed_and_charged_as_far_as_it_goes(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path, db_url: str
) -> None:
    whole = make_audio(tmp_path / "cut.mp3", 20).read_bytes()
    r = await say(engine, "/transcribe", attachments=(bytes_attachment("cut.mp3", whole[: len(whole) // 3]),))
    assert r.errors == [] and r.texts == [(f"[cut.mp3: {len(whole) // 3} bytes]", False)]
    [(kind, model, cost, state)] = await ledger_rows(db_url)
    seconds = cost / PriceTable.load().audio_cost(model, 1.0)
    assert (kind, state) == ("audio", "settled") and 5 < seconds < 8  # a third of 20 s, as ffmpeg measured it


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80))
def test_the_command_parser_never_crashes(line: str) -> None:
    command = parse_command_line(line)
    if command is not None:
        assert command.name and line.strip().startswith("/")
        assert command.name == command.name.lower()


async def test_nothing_is_corrupted_after_all_of_it(engine: Engine, fake_openai: FakeOpenAI, db_url: str) -> None:
    for text in WEIRD:
        await say(engine, text)
        await say(engine, f"/prompt save weird {text} {{v}}")
        await say(engine, f"/prompt run weird v={text}")
    while await engine.memory.embed_pending():
        pass
    for text in WEIRD:  # searched for, in every channel and none
        for line in (f"/search {text}", f"/search {text} channel:{text}", f"/search x channel:<#{text}>"):
            r = await say(engine, line)
            assert not any("something went wrong" in e for e in r.errors), (line, r.errors)
            assert r.errors or r.texts
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
