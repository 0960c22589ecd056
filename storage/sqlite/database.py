"""The SQLite side of the connection interface: one aiosqlite connection shared by every coroutine,
with transactions that cannot interleave, and statements rendered from PostgreSQL's spelling."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage.base import StoreFailed, StoreUnavailable
from storage.sql.connection import Abandoned, Lock, Row, Script, Statement
from storage.sqlite.group_commit import Entry, GroupCommit

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5_000
T = TypeVar("T")

_LIST = re.compile(r"LIST\(\$(\d+) AS \w+\)")
_PARAM = re.compile(r"\$(\d+)")


@lru_cache(maxsize=1024)
def render(sql: str) -> str:
    """A statement written for both databases, in SQLite's spelling (see storage/sql/connection.py)."""
    sql = _LIST.sub(r"SELECT value FROM json_each($\1)", sql)
    sql = sql.replace("strpos(", "instr(")
    return _PARAM.sub(r"?\1", sql)


@lru_cache(maxsize=1024)
def _takes_lists(sql: str) -> bool:
    """Whether a statement reads a list parameter (LIST): decided once per statement text."""
    return _LIST.search(sql) is not None


def _params(sql: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """List parameters (read by LIST) travel as one JSON array."""
    if _takes_lists(sql):
        return tuple(json.dumps(list(a)) if isinstance(a, list | tuple) else a for a in args)
    return args


def _prepared(sql: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """A statement and its parameters as SQLite runs them."""
    return render(sql), _params(sql, args)


def _each(statements: Sequence[Statement]) -> Script[list[list[Row]]]:
    """Statements with no logic between them, as a script: the rows of each."""
    rows = []
    for statement in statements:
        rows.append((yield statement))
    return rows


class _Statements:
    """execute / fetch / … on top of one primitive, `_run`, that each subclass guards its own way."""

    async def _run(self, call: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement without RETURNING (its rows would be left unread); rows changed."""

        async def call(db: aiosqlite.Connection) -> int:
            cursor = await db.execute(render(sql), _params(sql, args))
            return cursor.rowcount

        return await self._run(call)

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        """Run one statement once per parameter tuple."""

        async def call(db: aiosqlite.Connection) -> None:
            await db.executemany(render(sql), [_params(sql, a) for a in args])

        await self._run(call)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Run one statement and fetch its rows in a single trip to the database thread."""

        async def call(db: aiosqlite.Connection) -> list[Row]:
            return list(await db.execute_fetchall(render(sql), _params(sql, args)))

        return await self._run(call)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None


class _Transaction(_Statements):
    """Statements inside BEGIN IMMEDIATE … COMMIT: straight to the connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def _run(self, call: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        return await call(self._db)


class SQLiteDatabase(_Statements):
    """The connection: WAL, busy timeout, foreign keys."""

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
        self._groups = GroupCommit(db, _prepared)

    @classmethod
    async def open(cls, path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> SQLiteDatabase:
        """Open the file (creating it and its folder) and configure the connection."""
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
        except sqlite3.Error as exc:
            await db.close()
            raise StoreUnavailable(f"cannot use SQLite database {path}: {exc}") from exc
        return cls(db)

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    async def trace(self, callback: Callable[[str], object] | None) -> None:
        """Call `callback` with each statement SQLite runs (None: stop), to count what a piece of work costs."""
        await self._db.set_trace_callback(callback)  # type: ignore[arg-type]  # sqlite3 takes None: stop

    async def _run(self, call: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """One statement is one transaction. A writing statement (INSERT … SELECT … WHERE, UPDATE)
        takes SQLite's write lock before it reads anything, so a check inside it sees the latest
        committed data even with other processes on the file: exact, with no read-modify-write."""
        while self._transaction_lock.locked():
            async with self._transaction_lock:
                pass
        self._in_flight += 1
        self._idle.clear()
        try:
            return await call(self._db)
        except sqlite3.OperationalError as exc:  # as `_translated`, without a context manager on every statement
            raise _failed(exc) from exc
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    @asynccontextmanager
    async def transaction(self, lock: Lock | None = None) -> AsyncIterator[_Transaction]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error. BEGIN IMMEDIATE takes the file's
        write lock, which covers any `lock`."""
        async with self._transaction_lock, _translated():
            await self._idle.wait()
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Transaction(self._db)
            except BaseException:
                if self._db.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def batch(self, statements: Sequence[Statement], lock: Lock | None = None) -> list[list[Row]]:
        """BEGIN IMMEDIATE, the statements, COMMIT, in one trip to the connection's thread: queued like a
        single statement, so it neither drains the statements queued before it nor lets one in. Queued
        beside other scripts, it shares their transaction, all or nothing by a savepoint (see GroupCommit)."""
        entry = Entry(_each(statements), atomic=True)
        return await self._run(lambda _: self._groups.run(entry))

    async def run(self, script: Script[T], abandoned: Abandoned[T] | None = None) -> T:
        """The script in one trip to the connection's thread, its Python there too: queued like a single
        statement, each statement its own transaction (a writing one takes the write lock before it reads,
        so a Serialize step has nothing to do), or, queued beside others, in their transaction, its caller
        answered once that has committed (see GroupCommit). A failing step closes the script and raises. A
        cancelled caller leaves it running in the thread: `abandoned` gets its result once it has ended."""
        entry = Entry(script, atomic=False)
        try:
            return await self._run(lambda _: self._groups.run(entry, shielded=abandoned is not None))
        except asyncio.CancelledError:
            if abandoned is not None:
                await asyncio.shield(self._give_back(entry, abandoned))
            raise

    async def _give_back(self, entry: Entry, abandoned: Abandoned[T]) -> None:
        """Once a cancelled caller's script has ended, hand what it made to `abandoned` (nothing when it failed:
        its writes are undone, or it wrote nothing to give back)."""
        if (await self._groups.ended(entry)).made:
            await abandoned(entry.value)

    @asynccontextmanager
    async def serialized(self, lock: Lock) -> AsyncIterator[SQLiteDatabase]:
        """The database itself: its one statement takes the write lock before it reads."""
        yield self

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SQLiteDatabase]:
        """The database itself: each migration's BEGIN IMMEDIATE keeps other processes out."""
        yield self


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Operational failures (locked, full, I/O) become StoreFailed; constraint errors stay bugs."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise _failed(exc) from exc


def _failed(exc: sqlite3.OperationalError) -> StoreFailed:
    """The StoreFailed an operational failure becomes (busy when another writer held the file), logged."""
    text = str(exc)
    log.error("SQLite operation failed: %s", text)
    return StoreFailed(f"SQLite: {text}", busy="locked" in text or "busy" in text)
