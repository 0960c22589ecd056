"""200 conversations at once against a model that takes 200 ms: wall time vs one request alone.

Goal <= 1.3x: the engine adds no serialization of its own across conversations.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.support import DiscardingResponder, InstantModel, clock
from bot.app import open_engine
from bot.messages import Author, IncomingMessage
from bot.settings import load_settings

CONVERSATIONS = 200
MODEL_SECONDS = 0.2


async def measure(database_url: str) -> tuple[float, float]:
    """Seconds for one request alone, and for CONVERSATIONS at once."""
    settings = load_settings(env_file=None, database_url=database_url)
    model = InstantModel(delay=MODEL_SECONDS)
    responder = DiscardingResponder()

    def ask(i: int) -> IncomingMessage:
        return IncomingMessage("console", "local", f"c{i}", Author(f"u{i}", f"u{i}"), f"question {i}")

    async with open_engine(settings, model=model) as engine:
        await engine.handle(ask(-1), responder)  # warm-up
        start = clock()
        await engine.handle(ask(-2), responder)
        one = clock() - start
        start = clock()
        await asyncio.gather(*(engine.handle(ask(i), responder) for i in range(CONVERSATIONS)))
        many = clock() - start
    assert not responder.errors, responder.errors[:3]
    return one, many


async def run() -> dict[str, Any]:
    from tests.stores import fresh_database, postgres_reachable

    with tempfile.TemporaryDirectory() as tmp:
        one, many = await measure(f"sqlite:///{Path(tmp) / 'c.sqlite3'}")
        on_postgres = None
        if await postgres_reachable() is None:
            async with fresh_database("postgres", Path(tmp)) as url:
                on_postgres = await measure(url)
    result: dict[str, Any] = {
        "conversations": CONVERSATIONS,
        "model_seconds": MODEL_SECONDS,
        "one_request_s": round(one, 3),
        "all_at_once_s": round(many, 3),
        "ratio": round(many / one, 2),
        "goal": "ratio <= 1.3",
    }
    if on_postgres is not None:
        result["postgres_one_request_s"] = round(on_postgres[0], 3)
        result["postgres_all_at_once_s"] = round(on_postgres[1], 3)
        result["postgres_ratio"] = round(on_postgres[1] / on_postgres[0], 2)
    return result
