"""Engine overhead per chat turn, next to a raw aiosqlite loop doing the same database work.

Both sides do, per turn: find the open conversation, insert the user's message, select the window,
read the quota limits, reserve in the ledger, settle, insert the reply. The engine adds token
counting, locking, prompt building, pricing and the responder.
The model answers at once (InstantModel), so the ratio is our overhead, not the network's.
Memory is off for that comparison (the raw loop embeds nothing). A second engine run turns it on
with embeddings that answer at once: once the conversation outgrows the window (~90 messages),
every turn embeds its question and scans the conversation's vectors for recall; `recall` is what
that adds, without the embedding call's own network time.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from benchmarks.support import DiscardingResponder, InstantEmbeddings, InstantModel, clock, summarize
from bot.app import open_engine
from bot.chat.tokens import TOKENS_PER_REPLY, TokenCounter
from bot.messages import Author, IncomingMessage
from bot.settings import load_settings
from storage.sqlite import SQLiteStore

TURNS = 1_000
WARMUP = 50
# Realistic sizes: a question of ~40 tokens and an answer of ~150, so the window holds ~90 messages.
QUESTION = "Can you explain how the quarterly planning process works for the platform team, " * 3
ANSWER = "Sure. The planning process starts with a review of last quarter's goals and outcomes. " * 9


async def engine_turns(folder: Path, turns: int, *, recall: bool = False) -> list[float]:
    name = "recall" if recall else "engine"
    settings = load_settings(env_file=None, database_url=f"sqlite:///{folder / name}.sqlite3", memory_enabled=recall)
    responder = DiscardingResponder()
    author = Author("u1", "u1")
    times: list[float] = []
    async with open_engine(settings, model=InstantModel(ANSWER), embeddings=InstantEmbeddings()) as engine:
        for i in range(turns + WARMUP):
            message = IncomingMessage("console", "local", "c1", author, f"{i}: {QUESTION}")
            start = clock()
            await engine.handle(message, responder)
            if i >= WARMUP:
                times.append(clock() - start)
    assert not responder.errors, responder.errors
    return times


async def raw_turns(folder: Path, turns: int) -> list[float]:
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
    insert = (
        "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, created_at) VALUES"
        " (?1, ?2, ?3, ?4, COALESCE((SELECT tokens_before + tokens FROM messages WHERE conversation_id = ?1"
        " ORDER BY tokens_before DESC, id DESC LIMIT 1), 0), ?5)"
    )
    window = (
        "SELECT role, content, tokens FROM messages WHERE conversation_id = ?1 AND tokens_before >= ("
        " SELECT tokens_before + tokens FROM messages WHERE conversation_id = ?1"
        " ORDER BY tokens_before DESC, id DESC LIMIT 1) - ?2 ORDER BY tokens_before, id"
    )
    reserve = (
        "INSERT INTO usage_ledger (platform, team_id, user_id, kind, model, state, cost_nanos, user_day,"
        " team_month, created_at, expires_at) VALUES ('console', 'local', 'u1', 'chat', 'gpt-4.1-mini',"
        " 'reserved', ?, '2026-11-24', '2026-11', ?, ?) RETURNING id"
    )
    settle = "UPDATE usage_ledger SET state = 'settled', cost_nanos = ?, settled_at = ? WHERE id = ?"
    # Same token counts and budget as the engine uses, counted once here (the engine counts per turn).
    settings = load_settings(env_file=None)
    counter = TokenCounter.for_model(settings.chat_model)
    question_tokens = counter.count_message(f"{WARMUP}: {QUESTION}")
    answer_tokens = counter.count_message(ANSWER)
    budget = settings.input_token_budget - counter.count_message(settings.system_prompt) - TOKENS_PER_REPLY
    times: list[float] = []
    for i in range(turns + WARMUP):
        now = datetime.now(UTC).isoformat()
        start = clock()
        await db.execute_fetchall(
            "SELECT id FROM conversations WHERE platform = ? AND team_id = ? AND channel_id = ?"
            " AND thread_id = ? AND ended_at IS NULL",
            ("console", "local", "c1", ""),
        )
        await db.execute_fetchall(insert, (1, "user", f"{i}: {QUESTION}", question_tokens, now))
        await db.execute_fetchall(window, (1, budget))
        await db.execute_fetchall(
            "SELECT subject, metric, value FROM quota_limits WHERE team_id = ? AND subject IN (?, ?, ?)",
            ("local", "u1", "*", ""),
        )
        [(ledger_id,)] = await db.execute_fetchall(reserve, (2_000_000, now, now))
        await db.execute_fetchall(settle, (1_000_000, now, ledger_id))
        await db.execute_fetchall(insert, (1, "assistant", ANSWER, answer_tokens, now))
        if i >= WARMUP:
            times.append(clock() - start)
    await db.close()
    return times


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = summarize(await raw_turns(folder, TURNS))
        engine = summarize(await engine_turns(folder, TURNS))
        with_recall = summarize(await engine_turns(folder, TURNS, recall=True))
    return {
        "turns": TURNS,
        "engine": engine,
        "raw_aiosqlite": raw,
        "engine_with_recall": with_recall,
        "recall_adds_p50_us": round(with_recall["p50_us"] - engine["p50_us"], 1),
        "ratio_p50": round(engine["p50_us"] / raw["p50_us"], 2),
        "ratio_p99": round(engine["p99_us"] / raw["p99_us"], 2),
        "goal": "ratio_p50 <= 2.0",
    }
