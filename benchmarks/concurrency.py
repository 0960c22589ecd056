"""200 conversations at once against a model that takes 200 ms: wall time vs one request alone.

Two cases, on SQLite and (when a server answers) PostgreSQL:
- `first turns`: 200 new conversations, no budget set (every limit empty), right after start; then
  (`running_`) 200 more new conversations in the same process, which has served a burst as a running bot has
  (PostgreSQL: each pool connection has its statements prepared by then);
- `steady turns`: the 4th turn of 200 conversations, with a per-user daily and a team monthly budget
  set, so every call goes through the limit-checked reservation as it does in a deployment with budgets.

Goal <= 1.3x (SQLite) and <= 2x (PostgreSQL): the engine adds no serialization of its own across
conversations. CPU per turn is the process's CPU time over the burst, divided by the turns.
`raw_` is the floor under the SQLite steady case: the same statements run straight on aiosqlite
(benchmarks/raw_driver.py) around the same 200 ms wait, with none of our code, one statement per trip to its
thread; `raw_grouped_` the same statements grouped in two trips a turn, as the engine groups them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.raw_driver import RawTurns
from benchmarks.support import DiscardingResponder, InstantModel, clock
from bot.app import freeze_start_up, open_engine
from bot.messages import Author, IncomingMessage
from bot.settings import load_settings

CONVERSATIONS = 200
MODEL_SECONDS = 0.2
HISTORY_TURNS = 3  # a steady turn is the 4th of its conversation
BUDGET = {"quota_user_daily_usd": "5", "quota_team_monthly_usd": "10000"}


def ask(i: int, turn: int = 0) -> IncomingMessage:
    return IncomingMessage("console", "local", f"c{i}", Author(f"u{i}", f"u{i}"), f"question {turn} of {i}")


async def measure(database_url: str, *, steady: bool) -> dict[str, float]:
    """Seconds for one request alone and for CONVERSATIONS at once, and the CPU time per turn of the burst."""
    settings = load_settings(env_file=None, database_url=database_url, **(BUDGET if steady else {}))
    model = InstantModel(delay=0)
    responder = DiscardingResponder()
    async with open_engine(settings, model=model) as engine:
        freeze_start_up()  # as `python -m bot` does once the engine is open
        await engine.handle(ask(-1), responder)  # warm-up
        if steady:
            for turn in range(HISTORY_TURNS):
                await asyncio.gather(*(engine.handle(ask(i, turn), responder) for i in range(-2, CONVERSATIONS)))
        model.delay = MODEL_SECONDS
        start = clock()
        await engine.handle(ask(-2, HISTORY_TURNS), responder)
        one = clock() - start
        cpu, start = time.process_time(), clock()
        await asyncio.gather(*(engine.handle(ask(i, HISTORY_TURNS), responder) for i in range(CONVERSATIONS)))
        many, cpu = clock() - start, time.process_time() - cpu
        measured = {"one": one, "many": many, "cpu_ms_per_turn": cpu / CONVERSATIONS * 1000}
        if not steady:  # 200 more new conversations, in a process that has served a burst (as a running bot has)
            cpu, start = time.process_time(), clock()
            fresh = range(CONVERSATIONS, 2 * CONVERSATIONS)
            await asyncio.gather(*(engine.handle(ask(i, HISTORY_TURNS), responder) for i in fresh))
            measured |= {"again": clock() - start, "again_cpu_ms_per_turn": (time.process_time() - cpu) / CONVERSATIONS}
            measured["again_cpu_ms_per_turn"] *= 1000
    assert not responder.errors, responder.errors[:3]
    return measured


async def measure_raw(folder: Path, *, grouped: bool = False) -> dict[str, float]:
    """The steady burst's statements with none of our code: one turn alone, then CONVERSATIONS at once."""
    name = "raw-grouped" if grouped else "raw"
    model = load_settings(env_file=None).chat_model
    raw = await RawTurns.open(folder / f"{name}.sqlite3", model, 40, 150, grouped=grouped)
    question, answer = "a question of some forty tokens " * 8, "an answer of some hundred and fifty tokens " * 20

    async def turn(i: int) -> None:
        ledger_id = await raw.before_call(i + 10, f"c{i}", f"u{i}", question, 30_000)
        await asyncio.sleep(MODEL_SECONDS)
        await raw.after_call(i + 10, ledger_id, answer)

    for i in range(-2, CONVERSATIONS):
        await raw.add_conversation(i + 10, f"c{i}")
    await turn(-1)  # warm-up
    start = clock()
    await turn(-2)
    one = clock() - start
    cpu, start = time.process_time(), clock()
    await asyncio.gather(*(turn(i) for i in range(CONVERSATIONS)))
    many, cpu = clock() - start, time.process_time() - cpu
    await raw.close()
    return {"one": one, "many": many, "cpu_ms_per_turn": cpu / CONVERSATIONS * 1000}


def _figures(prefix: str, measured: dict[str, float]) -> dict[str, Any]:
    figures = {
        f"{prefix}one_request_s": round(measured["one"], 3),
        f"{prefix}all_at_once_s": round(measured["many"], 3),
        f"{prefix}ratio": round(measured["many"] / measured["one"], 2),
        f"{prefix}cpu_ms_per_turn": round(measured["cpu_ms_per_turn"], 2),
    }
    if "again" in measured:
        figures |= {
            f"{prefix}running_ratio": round(measured["again"] / measured["one"], 2),
            f"{prefix}running_cpu_ms_per_turn": round(measured["again_cpu_ms_per_turn"], 2),
        }
    return figures


async def run() -> dict[str, Any]:
    from tests.harness.stores import fresh_database, postgres_reachable

    result: dict[str, Any] = {
        "conversations": CONVERSATIONS,
        "model_seconds": MODEL_SECONDS,
        "goal": "ratio <= 1.3 (SQLite), <= 2 (PostgreSQL)",
    }
    with tempfile.TemporaryDirectory() as tmp:
        result |= _figures("", await measure(f"sqlite:///{Path(tmp) / 'c.sqlite3'}", steady=False))
        result |= _figures("steady_", await measure(f"sqlite:///{Path(tmp) / 's.sqlite3'}", steady=True))
        result |= _figures("raw_", await measure_raw(Path(tmp)))
        result |= _figures("raw_grouped_", await measure_raw(Path(tmp), grouped=True))
        if await postgres_reachable() is None:
            async with fresh_database("postgres", Path(tmp)) as url:
                result |= _figures("postgres_", await measure(url, steady=False))
            async with fresh_database("postgres", Path(tmp)) as url:
                result |= _figures("postgres_steady_", await measure(url, steady=True))
    return result
