"""Counting the statements and write transactions a turn runs (SQLite's trace)."""

from __future__ import annotations

from bot.chat.engine import Engine
from bot.messages import IncomingMessage
from bot.responder import Responder
from storage.sqlite import SQLiteStore

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def statements_run(traced: list[str]) -> list[str]:
    """The statements SQLite ran, one each: the trace repeats a statement for each trigger it fires."""
    run: list[str] = []
    for sql in traced:
        if sql.startswith("--"):  # a trigger's body, part of the statement before it
            continue
        if not run or run[-1] != sql:
            run.append(sql)
    return run


def write_transactions(statements: list[str]) -> int:
    """Commits that wrote: each writing statement on its own, or each BEGIN … COMMIT holding a write."""
    count, in_transaction, wrote = 0, False, False
    for sql in statements:
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb == "BEGIN":
            in_transaction, wrote = True, False
        elif verb in ("COMMIT", "END"):
            count += wrote
            in_transaction = False
        elif verb in WRITES or (verb == "WITH" and any(w in sql.upper() for w in WRITES)):
            if in_transaction:
                wrote = True
            else:
                count += 1
    return count


async def traced_turn(engine: Engine, message: IncomingMessage, responder: Responder) -> list[str]:
    """The statements SQLite ran for one message, one each."""
    store = engine.store
    assert isinstance(store, SQLiteStore)
    traced: list[str] = []
    await store.trace(traced.append)
    try:
        await engine.handle(message, responder)
    finally:
        await store.trace(None)
    return statements_run(traced)
