"""The SQLite Store: the rules of storage/sql/store.py on one SQLite file."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from storage.base import StoreFailed, StoreUnavailable
from storage.records import ConversationKey, TurnLease
from storage.sql.migrations import apply_migrations
from storage.sql.store import SQLStore
from storage.sqlite.database import BUSY_TIMEOUT_MS, SQLiteDatabase
from storage.sqlite.ledger import SQLiteLedger
from storage.sqlite.memory import SQLiteMemory
from storage.sqlite.migrations import MIGRATIONS

log = logging.getLogger(__name__)


class SQLiteStore(SQLStore):
    """A Store on one SQLite file. Safe for many coroutines; several processes may share the file."""

    def __init__(self, db: SQLiteDatabase) -> None:
        super().__init__(db, SQLiteMemory(db), SQLiteLedger(db))
        self._sqlite = db

    async def trace(self, callback: Callable[[str], object] | None) -> None:
        """Call `callback` with each statement run on the file (None: stop); tests and benchmarks count them."""
        await self._sqlite.trace(callback)

    @classmethod
    async def open(cls, path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> SQLiteStore:
        """Open (creating and migrating) the database at `path`."""
        db = await SQLiteDatabase.open(path, busy_timeout_ms)
        try:
            applied = await apply_migrations(db, MIGRATIONS)
        except (sqlite3.Error, StoreFailed) as exc:
            await db.close()
            raise StoreUnavailable(f"cannot use SQLite database {path}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        return cls(db)

    @asynccontextmanager
    async def turn_lock(self, key: ConversationKey) -> AsyncIterator[TurnLease | None]:
        """Nothing to do across processes: a SQLite deployment is one bot process (the engine already
        serializes turns within it). Several processes on one database is what PostgreSQL is for."""
        yield None
