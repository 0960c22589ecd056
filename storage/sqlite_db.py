"""One aiosqlite connection shared by every coroutine, with transactions that cannot interleave."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.base import StoreFailed, StoreUnavailable
from storage.migrations import apply_migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5_000


class SQLiteDatabase:
    """The connection: WAL, busy timeout, foreign keys; migrated on open."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # Single statements are queued to the connection's thread as they come, several at a time,
        # so it runs them back to back. A transaction takes this lock, waits for the statements
        # already queued, and keeps new ones out until it ends: no statement of another coroutine
        # can land inside it.
        self._transaction_lock = asyncio.Lock()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    async def open(cls, path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> SQLiteDatabase:
        """Open the file (creating it and its folder), configure the connection and migrate."""
        try:
            if isinstance(path, Path):
                path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
            await db.execute("PRAGMA foreign_keys = ON")
            applied = await apply_migrations(db)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreUnavailable(f"cannot use SQLite database {path}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        return cls(db)

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """Run one statement and fetch its rows in a single trip to the database thread.

        One statement is one transaction. A writing statement (INSERT … SELECT … WHERE, UPDATE)
        takes SQLite's write lock before it reads anything, so a check inside it sees the latest
        committed data even with other processes on the file: exact, with no read-modify-write.
        """
        while self._transaction_lock.locked():
            async with self._transaction_lock:
                pass
        self._in_flight += 1
        self._idle.clear()
        try:
            async with _translated():
                return list(await self._db.execute_fetchall(sql, params))
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
        async with self._transaction_lock, _translated():
            await self._idle.wait()
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Operational failures (locked, full, I/O) become StoreFailed; constraint errors stay bugs."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        busy = "locked" in text or "busy" in text
        log.error("SQLite operation failed: %s", text)
        raise StoreFailed(f"SQLite: {text}", busy=busy) from exc
