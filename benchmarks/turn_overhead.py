"""Engine overhead per chat turn, next to a raw aiosqlite loop running the same statements.

Both sides run, per turn, the statements of a steady turn with a budget set (tests/bot/chat/test_turn_cost.py
counts them): find the open conversation, insert the user's message, select the window, reserve in
the ledger (the limits read inside that statement), then settle and insert the reply in one
transaction. The raw loop takes the store's own SQL texts, so both run the very same statements. The
engine adds token counting, locking, prompt building, pricing and the responder.
The model answers at once (InstantModel), so the ratio is our overhead, not the network's. Besides
wall-clock percentiles, the CPU time of each side's loop per turn is measured (steadier on a shared
machine than wall time).
Memory is off for that comparison (the raw loop embeds nothing). A second engine run turns it on
with embeddings that answer at once: once the conversation outgrows the window (~90 messages),
every turn embeds its question and scans the conversation's vectors for recall; `recall` is what
that adds, without the embedding call's own network time.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from benchmarks.support import DiscardingResponder, InstantEmbeddings, InstantModel, clock, summarize
from bot.app import open_engine
from bot.chat.tokens import TOKENS_PER_REPLY, TokenCounter
from bot.messages import Author, IncomingMessage
from bot.settings import load_settings
from storage.sql.ledger import RESERVE, SETTLE
from storage.sql.store import ADD_MESSAGE, OPEN_CONVERSATION, WINDOW
from storage.sqlite import SQLiteStore
from storage.sqlite.database import render

TURNS = 1_000
WARMUP = 50
# Realistic sizes: a question of ~40 tokens and an answer of ~150, so the window holds ~90 messages.
QUESTION = "Can you explain how the quarterly planning process works for the platform team, " * 3
ANSWER = "Sure. The planning process starts with a review of last quarter's goals and outcomes. " * 9


BUDGET = {"quota_user_daily_usd": "1000", "quota_team_monthly_usd": "100000"}


async def engine_turns(
    folder: Path, turns: int, *, recall: bool = False, cpu: list[float] | None = None
) -> list[float]:
    name = "recall" if recall else "engine"
    url = f"sqlite:///{folder / name}.sqlite3"
    settings = load_settings(env_file=None, database_url=url, memory_enabled=recall, **BUDGET)
    responder = DiscardingResponder()
    author = Author("u1", "u1")
    times: list[float] = []
    async with open_engine(settings, model=InstantModel(ANSWER), embeddings=InstantEmbeddings()) as engine:
        for i in range(turns + WARMUP):
            message = IncomingMessage("console", "local", "c1", author, f"{i}: {QUESTION}")
            if i == WARMUP:
                started_cpu = time.process_time()
            start = clock()
            await engine.handle(message, responder)
            if i >= WARMUP:
                times.append(clock() - start)
        if cpu is not None:
            cpu.append((time.process_time() - started_cpu) / turns)
    assert not responder.errors, responder.errors
    return times


async def raw_turns(folder: Path, turns: int, cpu: list[float] | None = None) -> list[float]:
    """The same statements, hand-written, each in one trip to aiosqlite's thread (its fastest form).

    The schema is the store's own (opened once through SQLiteStore so the migrations create it),
    so both sides pay for the same indexes and ledger triggers; what differs is only our code.
    """
    path = folder / "raw.sqlite3"
    await (await SQLiteStore.open(path)).close()
    db = await aiosqlite.connect(path, isolation_level=None)
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.execute(
        "INSERT INTO conversations (id, platform, team_id, channel_id, created_at)"
        " VALUES (1, 'console', 'local', 'c1', '')"
    )
    # Same token counts and budget as the engine uses, counted once here (the engine counts per turn).
    settings = load_settings(env_file=None, **BUDGET)
    counter = TokenCounter.for_model(settings.chat_model)
    question_tokens = counter.count_message(f"{WARMUP}: {QUESTION}")
    answer_tokens = counter.count_message(ANSWER)
    budget = settings.input_token_budget - counter.count_message(settings.system_prompt) - TOKENS_PER_REPLY
    open_conversation, add_message, window = render(OPEN_CONVERSATION), render(ADD_MESSAGE), render(WINDOW)
    reserve, settle = render(RESERVE), render(SETTLE)
    times: list[float] = []
    for i in range(turns + WARMUP):
        now = datetime.now(UTC).isoformat()
        if i == WARMUP:
            started_cpu = time.process_time()
        start = clock()
        await db.execute_fetchall(open_conversation, ("console", "local", "c1", ""))
        await db.execute_fetchall(
            add_message,
            (1, "user", f"{i}: {QUESTION}", question_tokens, "u1", "u1", "", None, None, None, now, None, 0),
        )
        await db.execute_fetchall(window, (1, budget))
        [(ledger_id,)] = await db.execute_fetchall(
            reserve,
            ("console", "local", "u1", "c1", "chat", settings.chat_model, 2_000_000, 1_000, 0, 500, 0, 0,
             "2026-11-24", "2026-11", now, now, "raw:1", 1_000_000_000_000, 100_000_000_000_000, None, None, None,
             now, 0),
        )  # fmt: skip
        await db.execute("BEGIN IMMEDIATE")
        await db.execute_fetchall(settle, (1_000_000, 900, 0, 100, 0, 0, now, ledger_id, 0, 0))
        await db.execute_fetchall(
            add_message,
            (1, "assistant", ANSWER, answer_tokens, "", "", "", settings.chat_model, 900, 100, now, None, 0),
        )
        await db.execute("COMMIT")
        if i >= WARMUP:
            times.append(clock() - start)
    if cpu is not None:
        cpu.append((time.process_time() - started_cpu) / turns)
    await db.close()
    return times


async def run() -> dict[str, Any]:
    raw_cpu: list[float] = []
    engine_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = summarize(await raw_turns(folder, TURNS, raw_cpu))
        engine = summarize(await engine_turns(folder, TURNS, cpu=engine_cpu))
        with_recall = summarize(await engine_turns(folder, TURNS, recall=True))
    return {
        "turns": TURNS,
        "engine": engine,
        "raw_aiosqlite": raw,
        "engine_with_recall": with_recall,
        "recall_adds_p50_us": round(with_recall["p50_us"] - engine["p50_us"], 1),
        "ratio_p50": round(engine["p50_us"] / raw["p50_us"], 2),
        "ratio_p99": round(engine["p99_us"] / raw["p99_us"], 2),
        "engine_cpu_us_per_turn": round(engine_cpu[0] * 1e6, 1),
        "raw_cpu_us_per_turn": round(raw_cpu[0] * 1e6, 1),
        "cpu_ratio": round(engine_cpu[0] / raw_cpu[0], 2),
        "goal": "ratio_p50 <= 2.0; cpu_ratio <= 1.5",
    }
