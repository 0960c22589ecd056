"""A text-chat bot keeps the heavy libraries it does not need out of its process (issue 25: idle memory).

A fresh interpreter imports the bot, opens the engine with the default settings (console, SQLite, memory on, the
tool loop on) against the fake OpenAI server, answers one message and embeds it in the background, and says which
of these modules it holds at each step. bpe-openai (~135 MB with an encoder), numpy (~11 MB), Pillow, asyncpg
and, with no MCP server configured, the MCP SDK (~27 MB) never belong there; nor tiktoken (the vocabulary is read
by bot/providers/bpe.py on the first count).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
WATCHED = ("bpe_openai", "numpy", "PIL", "asyncpg", "mcp", "tiktoken", "pypdf", "matplotlib")
NEVER_FOR_TEXT = {"bpe_openai", "numpy", "PIL", "asyncpg", "mcp", "tiktoken"}

_CHILD = """
import asyncio, json, sys

WATCHED = sys.argv[3].split(",")
steps = {}

def note(step):
    steps[step] = sorted(name for name in WATCHED if name in sys.modules)

import bot.app
note("import")

from bot.messages import Author, IncomingMessage
from bot.settings import load_settings
from tests.fakes.responder import RecordingResponder

async def main():
    settings = load_settings(
        env_file=None, database_url=sys.argv[1], openai_base_url=sys.argv[2], openai_api_key="unused",
        openai_max_retries=0,
    )
    async with bot.app.open_engine(settings) as engine:
        note("open")
        responder = RecordingResponder()
        await engine.handle(IncomingMessage("console", "local", "c1", Author("u1", "Ada"), "hello there"), responder)
        assert not responder.errors, responder.errors
        note("turn")
        while await engine.memory.embed_pending():
            pass
        embedded = engine.memory.key
        note("embedded")
    print(json.dumps({"steps": steps, "reply": responder.streams[0].text, "key": embedded}))

asyncio.run(main())
"""


async def test_a_text_turn_with_memory_loads_no_tokenizer_of_bpe_openai_nor_numpy_pillow_or_asyncpg(
    tmp_path: Path,
) -> None:
    async with FakeOpenAI() as fake:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, f"sqlite:///{tmp_path / 'bot.sqlite3'}", fake.base_url, ",".join(WATCHED),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        )  # fmt: skip
        out, err = await asyncio.wait_for(child.communicate(), timeout=120)
    assert child.returncode == 0, err.decode()
    seen = json.loads(out)
    assert seen["reply"] == "echo: hello there"  # the turn went through the real client and the fake
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:  # and the question and the reply were embedded and stored
        assert db.execute("SELECT count(*) FROM message_vectors").fetchone() == (2,)
    assert seen["key"] == "text-embedding-3-small@512"
    steps = seen["steps"]
    assert {step: NEVER_FOR_TEXT & set(loaded) for step, loaded in steps.items()} == {step: set() for step in steps}
    assert steps["import"] == steps["open"] == steps["turn"] == steps["embedded"] == []
