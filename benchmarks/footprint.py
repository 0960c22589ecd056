"""Idle memory with 10,000 stored conversations, and cold start of `python -m bot --help`.

Both run as fresh processes, next to a bare interpreter measured the same way in the same run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.support import clock
from storage.sqlite import SQLiteStore

CONVERSATIONS = 10_000
REPO = Path(__file__).resolve().parents[1]
STARTS = 5

# The child: open the engine on the filled database, answer one message, report its resident memory.
_IDLE_CHILD = """
import sys
from benchmarks.support import DiscardingResponder, InstantModel
from bot.app import freeze_start_up, open_engine
from bot.event_loop import run
from bot.messages import Author, IncomingMessage
from bot.settings import load_settings

async def main():
    settings = load_settings(env_file=None, database_url="sqlite:///" + sys.argv[1])
    async with open_engine(settings, model=InstantModel()) as engine:
        freeze_start_up()  # as `python -m bot` does once the engine is open
        message = IncomingMessage("console", "local", "c42", Author("u", "u"), "hello")
        await engine.handle(message, DiscardingResponder())
        print(rss_kb())

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

run(main())  # the loop `python -m bot` runs on
"""
_BARE_CHILD = """
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]))
"""


async def _child(code: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, stdout=asyncio.subprocess.PIPE, cwd=REPO
    )
    out, _ = await process.communicate()
    return out.decode().strip()


async def _timed(*argv: str) -> float:
    start = clock()
    process = await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=asyncio.subprocess.DEVNULL, cwd=REPO)
    await process.wait()
    return clock() - start


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "idle.sqlite3"
        await (await SQLiteStore.open(path)).close()
        now = datetime.now(UTC).isoformat()
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO conversations (id, platform, team_id, channel_id, created_at)"
                " VALUES (?, 'console', 'local', ?, ?)",
                ((i, f"c{i}", now) for i in range(1, CONVERSATIONS + 1)),
            )
            db.executemany(
                "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, created_at)"
                " VALUES (?, ?, ?, 12, ?, ?)",
                ((i, role, f"message in conversation {i}", 0 if role == "user" else 12, now)
                 for i in range(1, CONVERSATIONS + 1) for role in ("user", "assistant")),
            )  # fmt: skip
        idle_kb = int(await _child(_IDLE_CHILD, str(path)))
    bare_kb = int(await _child(_BARE_CHILD))
    bot_start = statistics.median([await _timed("-m", "bot", "--help") for _ in range(STARTS)])
    bare_start = statistics.median([await _timed("-c", "pass") for _ in range(STARTS)])
    return {
        "stored_conversations": CONVERSATIONS,
        "idle_rss_mb": round(idle_kb / 1024, 1),
        "bare_python_rss_mb": round(bare_kb / 1024, 1),
        "idle_rss_goal": "<= 110 MB",
        "cold_start_help_s": round(bot_start, 3),
        "bare_python_start_s": round(bare_start, 3),
        "cold_start_ratio": round(bot_start / bare_start, 1),
    }
