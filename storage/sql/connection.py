"""The seam between SQL written once and the two drivers: a small connection interface.

Statements are written once, in PostgreSQL's placeholders (`$1`, `$2`, …) and standard SQL. Each
driver's wrapper renders them for itself, once per statement text (see `storage.sqlite.database`
and `storage.postgres.database`). Two spellings are not standard SQL and are rendered per driver:

- `LIST($n AS type)`: the rows of a list parameter, for `x IN (LIST($2 AS text))`
  (a JSON array through `json_each` on SQLite, an array through `unnest` on PostgreSQL);
- `strpos(text, part)`: the 1-based position of `part` in `text`, 0 if absent (`instr` on SQLite).

Where the databases really differ in behaviour (how a write that reads first is kept exact), a
statement names the lock it needs (`Lock`) and each driver decides what that lock is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple, Protocol, TypeVar

Row = Any  # a tuple (SQLite) or an asyncpg Record (PostgreSQL): index it, unpack it, tuple() it


# One statement of a batch and its parameters.
Statement = tuple[str, tuple[Any, ...]]
T = TypeVar("T")


class Lock(NamedTuple):
    """A named lock of one transaction, e.g. Lock("ledger", team_id).

    SQLite has one write lock for the whole file, taken by every writing statement and by
    BEGIN IMMEDIATE, so it needs no other. PostgreSQL locks what the name says (see LOCKS in
    storage/postgres/database.py).
    """

    name: str
    keys: tuple[Any, ...]


def ledger_lock(team_id: str) -> Lock:
    """Reservations of one team, one at a time (each then checks committed totals)."""
    return Lock("ledger", (team_id,))


def limits_lock(team_id: str) -> Lock:
    """Limit changes of one team, one at a time (each records the value it replaced)."""
    return Lock("limits", (team_id,))


def prompt_lock(team_id: str, name: str) -> Lock:
    """Saves of one prompt, one at a time (each numbers the next version)."""
    return Lock("prompt", (team_id, name))


def conversation_lock(conversation_id: int) -> Lock:
    """Changes to one conversation's messages that take several statements, one at a time (an edit moving the running
    token totals after it, a message stored with its images)."""
    return Lock("conversation", (conversation_id,))


class Serialize(NamedTuple):
    """A step of a Script: the statements that follow, up to `Serialize(None)`, run as `Database.serialized`
    holding `lock` (on SQLite each on its own, since a writing statement takes the write lock before it reads;
    on PostgreSQL in a transaction that takes `lock` first). Its rows: none."""

    lock: Lock | None


# Statements with Python between them, written once for both databases: a generator that yields each
# statement (or a Serialize step) and is sent its rows back, and returns its result. `Database.run` runs
# it in one trip (SQLite) or on one connection (PostgreSQL). Each statement is its own transaction, as
# when run one by one; what needs one transaction for several statements goes through `batch`.
Script = Generator[Statement | Serialize, list[Row], T]
# What a cancelled caller's script took, given back once the script has ended (see Database.run).
Abandoned = Callable[[T], Awaitable[None]]


class Connection(Protocol):
    """Run statements: on the database (each its own transaction) or inside one transaction."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement without RETURNING; how many rows it changed."""

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        """Run one statement once per parameter tuple."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Run one statement; all its rows."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """Run one statement; its first row, or None."""

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Run one statement; the first column of its first row, or None."""


class Database(Connection, Protocol):
    """The connection (SQLite) or pool (PostgreSQL) a Store runs on."""

    def transaction(self, lock: Lock | None = None) -> AbstractAsyncContextManager[Connection]:
        """A transaction holding `lock` (and, on SQLite, the file's write lock), rolled back on any error."""

    def serialized(self, lock: Lock) -> AbstractAsyncContextManager[Connection]:
        """Where ONE writing statement that reads before it writes runs exactly, holding `lock`.

        SQLite: the database itself, since a writing statement takes the write lock before it reads
        (one round trip, no transaction). PostgreSQL: a transaction that takes `lock` first.
        """

    async def batch(self, statements: Sequence[Statement], lock: Lock | None = None) -> list[list[Row]]:
        """Run statements, with no logic between them, as one transaction holding `lock`: the rows of each.

        SQLite runs them in one trip to its thread (nothing can interleave, no queue to drain);
        PostgreSQL in a transaction on one connection.
        """

    async def run(self, script: Script[T], abandoned: Abandoned[T] | None = None) -> T:
        """Run a script: its statements, and the Python between them, with nothing of another coroutine in
        between. SQLite runs it in one trip to its thread (the Python too); PostgreSQL on one connection.

        `abandoned`: a caller cancelled while the script runs does not stop it (SQLite's thread runs it to its
        end anyway; on PostgreSQL it is then finished as if nothing happened). It is given the script's result
        once the script has ended, to give back what it took, and the cancellation goes on.
        """

    def session(self) -> AbstractAsyncContextManager[Database]:
        """One connection for a sequence of transactions (the migrations), holding the migration lock."""

    async def close(self) -> None:
        """Close the connection or pool."""
