"""Semantic-memory test helpers: a planted secret, embedding everything queued, what the database holds."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.chat.engine import Engine
from bot.directory import Directory
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


SECRET = "The deploy freeze for the Zephyr launch starts Thursday at noon; Priya owns the rollback plan."


def db_rows(db_url: str, sql: str) -> list[Any]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


async def say(engine: Engine, text: str, directory: Directory | None = None, **where: Any) -> RecordingResponder:
    """Send `text` as an adapter would; `directory` is what the platform says the author may see."""
    responder = RecordingResponder()
    sent = replace(message(text, **where), platform_directory=directory, created_at=engine.now())
    await engine.handle(sent, responder)
    assert not responder.errors, responder.errors
    return responder


async def embed_all(engine: Engine) -> None:
    while await engine.memory.embed_pending():
        pass
