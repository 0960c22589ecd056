"""The statements of a steady chat turn run straight on aiosqlite: the floor our engine is measured against.

Per turn: find the open conversation, insert the user's message, select the window, reserve in the ledger
(the limits read inside that statement); then, after the model, settle and insert the reply in one
transaction — the store's own SQL texts, on a schema made by the store's own migrations, so the indexes and
ledger triggers are the same. Only our code (token counting, locking, prompt building, pricing, the
responder) is missing.

`grouped=True` runs the same statements grouped as the engine groups them: everything before the model in
one trip to aiosqlite's thread (each statement still its own transaction), the closing transaction in
another; two trips a turn instead of eight. The ungrouped loop stays the floor "one statement per trip".
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from storage.sql.ledger import RESERVE, SETTLE
from storage.sql.store import ADD_MESSAGE, OPEN_CONVERSATION, WINDOW
from storage.sqlite import SQLiteStore
from storage.sqlite.database import render

# Limits high enough never to refuse, read by every reservation as a deployment with budgets would.
USER_DAILY_NANOS, TEAM_MONTHLY_NANOS = 1_000_000_000_000, 100_000_000_000_000


class RawTurns:
    """Steady turns on one aiosqlite connection; the closing transaction is serialized, as SQLite's one writer is."""

    def __init__(
        self, db: aiosqlite.Connection, model: str, question_tokens: int, answer_tokens: int, *, grouped: bool = False
    ) -> None:
        self._db = db
        self._grouped = grouped
        self._model = model
        self._question_tokens, self._answer_tokens = question_tokens, answer_tokens
        self._writing = asyncio.Lock()
        self._open, self._add, self._window = render(OPEN_CONVERSATION), render(ADD_MESSAGE), render(WINDOW)
        self._reserve, self._settle = render(RESERVE), render(SETTLE)

    @classmethod
    async def open(
        cls, path: Path, model: str, question_tokens: int, answer_tokens: int, *, grouped: bool = False
    ) -> RawTurns:
        await (await SQLiteStore.open(path)).close()  # the store's own schema
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA synchronous = NORMAL")
        return cls(db, model, question_tokens, answer_tokens, grouped=grouped)

    async def _trip(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        """The statements in one trip to aiosqlite's thread (its own primitive, as storage/sqlite/database.py uses)."""

        def run(conn: sqlite3.Connection) -> list[list[Any]]:
            return [conn.execute(sql, args).fetchall() for sql, args in statements]

        return await self._db._execute(lambda: run(self._db._conn))  # type: ignore[no-untyped-call,no-any-return]

    async def close(self) -> None:
        await self._db.close()

    async def add_conversation(self, conversation_id: int, channel: str) -> None:
        await self._db.execute(
            "INSERT INTO conversations (id, platform, team_id, channel_id, created_at)"
            " VALUES (?, 'console', 'local', ?, '')",
            (conversation_id, channel),
        )

    async def before_call(self, conversation_id: int, channel: str, user: str, question: str, window: int) -> int:
        """What a turn runs before the model: returns the reservation's ledger id."""
        now = datetime.now(UTC).isoformat()
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (self._open, ("console", "local", channel, "")),
            (self._add, (conversation_id, "user", question, self._question_tokens, user, user, "", None, None, None,
                         now, None, 0)),
            (self._window, (conversation_id, window)),
            (self._reserve, ("console", "local", user, channel, "chat", self._model, 2_000_000, 1_000, 0, 500, 0, 0,
                             "2026-11-24", "2026-11", now, now, f"raw:{conversation_id}", USER_DAILY_NANOS,
                             TEAM_MONTHLY_NANOS, None, None, None, now, 0)),
        ]  # fmt: skip
        if self._grouped:
            [(ledger_id,)] = (await self._trip(statements))[-1]
            return int(ledger_id)
        for sql, args in statements[:-1]:
            await self._db.execute_fetchall(sql, args)
        [(ledger_id,)] = await self._db.execute_fetchall(*statements[-1])
        return int(ledger_id)

    async def after_call(self, conversation_id: int, ledger_id: int, answer: str) -> None:
        """What a turn runs after the model: settle and store the reply, in one transaction."""
        now = datetime.now(UTC).isoformat()
        if self._grouped:
            await self._trip([
                ("BEGIN IMMEDIATE", ()),
                (self._settle, (1_000_000, 900, 0, 100, 0, 0, now, ledger_id, 0, 0)),
                (self._add, (conversation_id, "assistant", answer, self._answer_tokens, "", "", "", self._model, 900,
                             100, now, None, 0)),
                ("COMMIT", ()),
            ])  # fmt: skip
            return
        async with self._writing:
            await self._db.execute("BEGIN IMMEDIATE")
            await self._db.execute_fetchall(self._settle, (1_000_000, 900, 0, 100, 0, 0, now, ledger_id, 0, 0))
            await self._db.execute_fetchall(
                self._add,
                (conversation_id, "assistant", answer, self._answer_tokens, "", "", "", self._model, 900, 100, now,
                 None, 0),
            )  # fmt: skip
            await self._db.execute("COMMIT")
