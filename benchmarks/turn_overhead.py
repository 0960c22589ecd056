"""Engine overhead per chat turn, next to a raw aiosqlite loop running the same statements.

Both sides run, per turn, the statements of a steady turn with a budget set (tests/bot/chat/test_turn_cost.py
counts them; benchmarks/raw_driver.py runs them raw). The engine adds token counting, locking, prompt
building, pricing and the responder.
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
from pathlib import Path
from typing import Any

from benchmarks.raw_driver import RawTurns
from benchmarks.support import DiscardingResponder, InstantEmbeddings, InstantModel, clock, summarize
from bot.app import freeze_start_up, open_engine
from bot.messages import Author, IncomingMessage
from bot.providers.tokens import TOKENS_PER_REPLY, TokenCounter
from bot.settings import load_settings

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
        freeze_start_up()  # as `python -m bot` does once the engine is open
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
    """The same statements, hand-written, each in one trip to aiosqlite's thread (its fastest form)."""
    # Same token counts and budget as the engine uses, counted once here (the engine counts per turn).
    settings = load_settings(env_file=None, **BUDGET)
    counter = TokenCounter.for_model(settings.chat_model)
    budget = settings.input_token_budget - counter.count_message(settings.system_prompt) - TOKENS_PER_REPLY
    raw = await RawTurns.open(
        folder / "raw.sqlite3",
        settings.chat_model,
        counter.count_message(f"{WARMUP}: {QUESTION}"),
        counter.count_message(ANSWER),
    )
    await raw.add_conversation(1, "c1")
    times: list[float] = []
    for i in range(turns + WARMUP):
        if i == WARMUP:
            started_cpu = time.process_time()
        start = clock()
        ledger_id = await raw.before_call(1, "c1", "u1", f"{i}: {QUESTION}", budget)
        await raw.after_call(1, ledger_id, ANSWER)
        if i >= WARMUP:
            times.append(clock() - start)
    if cpu is not None:
        cpu.append((time.process_time() - started_cpu) / turns)
    await raw.close()
    return times


async def run() -> dict[str, Any]:
    freeze_start_up()  # the raw loop gets the frozen imports too, so both sides scan the same heap
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
