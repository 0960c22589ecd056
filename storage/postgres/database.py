"""The PostgreSQL side of the connection interface: an asyncpg pool, statements as written
(PostgreSQL's own placeholders), operational failures turned into StoreFailed."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg

from storage.base import StoreFailed
from storage.sql.connection import Abandoned, Lock, Row, Script, Serialize, Statement

T = TypeVar("T")

MIGRATION_LOCK = 7_120_341  # pg_advisory_lock key for "teambot migrations"

# What each named lock of storage/sql/connection.py is on PostgreSQL, taken first in its transaction.
# It travels with the BEGIN, in one round trip: a simple query, which takes no parameters, so the
# statement holds only numbers: an advisory lock's 64-bit key hashed here from the lock's name and keys,
# or a conversation's integer id. No text from outside ever reaches the SQL.
LOCKS = {
    "ledger": "SELECT pg_advisory_xact_lock({key})",
    "limits": "SELECT pg_advisory_xact_lock({key})",
    "prompt": "SELECT pg_advisory_xact_lock({key})",
    "conversation": "SELECT 1 FROM conversations WHERE id = {id:d} FOR UPDATE",
}


def lock_statement(lock: Lock) -> str:
    """The statement that takes `lock`, with its key as a literal number."""
    digest = hashlib.blake2b(repr((lock.name, *lock.keys)).encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    return LOCKS[lock.name].format(key=key, id=int(lock.keys[0]) if lock.name == "conversation" else 0)


# Evaluated in a statement run on its own (its own transaction), this makes that transaction's commit asynchronous:
# SET LOCAL synchronous_commit = off, as a function, so it reverts at the commit and never reaches the pooled
# session. Only for writes whose loss in a server crash is harmless: rows that coordinate processes (a turn's lease,
# a person's in-flight claim), which such a crash ends anyway. Their commit then does not wait for the disk.
NO_FLUSH = "set_config('synchronous_commit', 'off', true)"

_LIST = re.compile(r"LIST\((\$\d+) AS (\w+)\)")


@lru_cache(maxsize=1024)
def render(sql: str) -> str:
    """A statement written for both databases, in PostgreSQL's spelling (see storage/sql/connection.py)."""
    return _LIST.sub(r"SELECT unnest(\1::\2[])", sql)


@asynccontextmanager
async def _transaction(conn: asyncpg.Connection, lock: Lock | None) -> AsyncIterator[None]:
    """BEGIN (taking `lock` in the same round trip) … COMMIT on `conn`, rolled back on any error."""
    try:
        await conn.execute("BEGIN" if lock is None else f"BEGIN; {lock_statement(lock)}")
        yield
    except BaseException:
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


_BUSY = (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError)
# What `translated` turns into StoreFailed: lock timeouts and lost connections; constraint errors stay bugs.
_OPERATIONAL = (*_BUSY, asyncpg.InterfaceError, asyncpg.DiskFullError, OSError)


def _failed(exc: BaseException) -> StoreFailed:
    """The StoreFailed an operational failure (one of _OPERATIONAL) becomes."""
    return StoreFailed(f"PostgreSQL: {exc}", busy=isinstance(exc, _BUSY))


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Lock timeouts and lost connections become StoreFailed; constraint errors stay bugs."""
    try:
        yield
    except _OPERATIONAL as exc:
        raise _failed(exc) from exc


def _changed(status: str) -> int:
    """Rows changed, from a command status such as 'UPDATE 3' or 'INSERT 0 1'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Statements:
    """The interface's statements on a pool (each call its own connection) or on one connection."""

    def __init__(self, target: asyncpg.Pool | asyncpg.Connection) -> None:
        self._target = target

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; rows changed."""
        try:  # as `translated`, without a context manager around every statement
            return _changed(await self._target.execute(render(sql), *args))
        except _OPERATIONAL as exc:
            raise _failed(exc) from exc

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        """Run one statement once per parameter tuple."""
        try:
            await self._target.executemany(render(sql), args)
        except _OPERATIONAL as exc:
            raise _failed(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """All rows."""
        try:
            return list(await self._target.fetch(render(sql), *args))
        except _OPERATIONAL as exc:
            raise _failed(exc) from exc

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row, or None."""
        try:
            return await self._target.fetchrow(render(sql), *args)
        except _OPERATIONAL as exc:
            raise _failed(exc) from exc

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        try:
            return await self._target.fetchval(render(sql), *args)
        except _OPERATIONAL as exc:
            raise _failed(exc) from exc


class PostgresDatabase(_Statements):
    """A pool; or, inside `session`, one of its connections."""

    def __init__(self, target: asyncpg.Pool | asyncpg.Connection) -> None:
        super().__init__(target)

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool (for what only PostgreSQL does: turn leases)."""
        assert isinstance(self._target, asyncpg.Pool)
        return self._target

    async def close(self) -> None:
        """Close the pool."""
        await self._target.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if isinstance(self._target, asyncpg.Pool):
            async with self._target.acquire() as conn:
                yield conn
        else:
            yield self._target

    @asynccontextmanager
    async def transaction(self, lock: Lock | None = None) -> AsyncIterator[_Statements]:
        """A transaction on one connection, taking `lock` in the same round trip as BEGIN; rolled back on
        any error (if the connection is lost meanwhile, the pool's reset rolls it back or drops it)."""
        async with translated(), self._connection() as conn, _transaction(conn, lock):
            yield _Statements(conn)

    async def batch(self, statements: Sequence[Statement], lock: Lock | None = None) -> list[list[Row]]:
        """The statements in one transaction on one connection, taking `lock` first: the rows of each."""
        async with self.transaction(lock) as tx:
            return [await tx.fetch(sql, *args) for sql, args in statements]

    async def run(self, script: Script[T], abandoned: Abandoned[T] | None = None) -> T:
        """The script on one connection (one acquire from the pool); a Serialize step's statements in a
        transaction that takes its lock first. A failing step rolls its transaction back, closes the script
        and raises. With `abandoned`, a cancelled caller leaves the script to finish, and `abandoned` gets its
        result (a statement cut short could have been committed all the same)."""
        if abandoned is None:
            return await self._script(script)
        running = asyncio.ensure_future(self._script(script))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            await asyncio.shield(_give_back(running, abandoned))
            raise

    async def _script(self, script: Script[T]) -> T:
        async with translated(), self._connection() as conn:
            try:
                step = next(script)
                while True:
                    if isinstance(step, Serialize):
                        rows: list[Row] = []
                        if step.lock is not None:
                            await conn.execute(f"BEGIN; {lock_statement(step.lock)}")
                        elif conn.is_in_transaction():
                            await conn.execute("COMMIT")
                    else:
                        rows = list(await conn.fetch(render(step[0]), *step[1]))
                    step = script.send(rows)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            except BaseException:
                if conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                raise
            finally:
                script.close()

    def serialized(self, lock: Lock) -> AbstractAsyncContextManager[_Statements]:
        """A transaction that takes `lock` first, for one statement that reads before it writes."""
        return self.transaction(lock)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[PostgresDatabase]:
        """One connection holding the migration lock, so processes starting together migrate once."""
        async with self._connection() as conn:
            async with translated():
                await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                yield PostgresDatabase(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def _give_back(running: asyncio.Future[T], abandoned: Abandoned[T]) -> None:
    """Hand a cancelled caller's script result, once it has ended, to `abandoned` (a failed script took nothing)."""
    await asyncio.wait([running])
    if not running.cancelled() and running.exception() is None:
        await abandoned(running.result())
