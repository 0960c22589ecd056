"""Group commit: the scripts that queue for SQLite's one thread while it is busy run in one write transaction.

In a burst (many conversations at once) each turn's opening waits for those queued before it, and each of
its writes, committed on its own, pays a commit to the WAL (~20 us each, of an opening's ~100 us of SQL). Run
together, the scripts waiting meanwhile pay one commit, and one trip back to the event loop. A script that
finds nothing queued or running goes at once, in its caller's own trip, as it always did: each statement its own
transaction (a batch: BEGIN IMMEDIATE … COMMIT); those that come while it is out queue behind it.

What each caller is promised, grouped or not:
- its result only once its writes are committed: a crash before the group's COMMIT loses writes that no
  caller was told of, as a crash before the statements ran would have;
- a script that fails fails alone: SQLite undoes only the failing statement and the script's earlier writes
  stay, as when each statement was its own transaction; a batch (`atomic`) is undone whole, by its savepoint;
- when SQLite rolls the whole transaction back itself (disk full, I/O error: it may, and says so by leaving
  the transaction) or the COMMIT fails, every caller whose writes were in it gets the error, never a result;
  the scripts after it run in a new transaction;
- a group that cannot take the write lock within the busy timeout fails as its writes would have, each
  with the busy error;
- a caller cancelled meanwhile does not stop its script (nor did it before: the thread runs it anyway); its
  future still gets the outcome once the group ends (see SQLiteDatabase.run's `abandoned`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import aiosqlite

from storage.sql.connection import Row, Script, Serialize

# The most scripts one transaction takes. Their callers all wait for its COMMIT, so a small group lets the
# first results go back to the event loop (and their turns on to the model) while the thread runs the next.
# Measured on the 200-conversation burst: 8 to 64 do about alike, 16 a hair best; everything queued, worse.
GROUP_MOST = 16

_SAVEPOINT = "group_commit_entry"


class Entry:
    """One caller's script, and what became of it."""

    __slots__ = ("atomic", "done", "error", "finished", "led", "script", "value")

    def __init__(self, script: Script[Any], atomic: bool) -> None:
        self.script = script
        self.atomic = atomic
        self.done: asyncio.Future[Any] | None = None  # its outcome, when queued behind others
        self.led = False  # run alone in its caller's own trip (nothing was queued or running)
        self.finished = False  # the script returned (`value`)
        self.value: Any = None
        self.error: BaseException | None = None

    @property
    def made(self) -> bool:
        """Whether the script ended and its writes are committed."""
        return self.finished and self.error is None


class GroupCommit:
    """Runs scripts on an aiosqlite connection's thread; those queued while it is busy share a transaction."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        prepare: Callable[[str, tuple[Any, ...]], tuple[str, tuple[Any, ...]]],
        most: int = GROUP_MOST,
    ) -> None:
        self._db = db
        self._prepare = prepare  # a statement as written -> as SQLite runs it (storage/sqlite/database.py)
        self._most = most
        self._queued: deque[Entry] = deque()
        self._leading = False  # a caller's own trip is out, with its script alone
        self._trip: asyncio.Task[None] | None = None  # the task taking groups to the thread while any is queued

    async def run(self, entry: Entry, *, shielded: bool = False) -> Any:
        """Run the entry's script: alone, in its caller's own trip, when nothing else is queued or running (as
        it always ran, at no extra cost); else queued, in the next group. Its value, or its error, once the
        transaction that ran it has ended. `shielded`: a cancelled caller's queued entry still gets its outcome
        (see `ended`)."""
        if self._trip is None and not self._leading:
            return await self._lead(entry)
        entry.done = asyncio.get_running_loop().create_future()
        self._queued.append(entry)
        return await (asyncio.shield(entry.done) if shielded else entry.done)

    async def ended(self, entry: Entry) -> Entry:
        """Once a cancelled caller's script has ended (it runs on in the thread), the entry with its outcome."""
        if entry.led:
            await self._db._execute(lambda: None)  # type: ignore[no-untyped-call]  # the thread runs trips in order
        elif entry.done is not None:
            with suppress(Exception):
                await entry.done
        else:
            entry.script.close()  # never submitted: it never ran
        return entry

    async def _lead(self, entry: Entry) -> Any:
        self._leading = entry.led = True
        try:
            await self._db._execute(lambda: self._alone(self._db._conn, entry))  # type: ignore[no-untyped-call]
        except ValueError:  # the connection is closed: the trip never started
            entry.script.close()
            raise
        finally:
            self._leading = False
            if self._queued and self._trip is None:  # queued behind this trip: take them now
                self._trip = asyncio.ensure_future(self._trips())
        if entry.error is not None:
            raise entry.error
        return entry.value

    async def _trips(self) -> None:
        """Take one group at a time to the thread while any script is queued. Each trip joins the back of the
        connection's queue, behind the statements queued meanwhile: a stream of scripts never holds them up."""
        try:
            while self._queued:
                _deliver(await self._db._execute(self._group))  # type: ignore[no-untyped-call]
        except BaseException as exc:  # the connection was closed, or a bug: nobody may wait forever
            while self._queued:
                entry = self._queued.popleft()
                entry.script.close()
                entry.error = exc
                _deliver([entry])
            if not isinstance(exc, Exception):
                raise
        finally:
            self._trip = None

    def _group(self) -> list[Entry]:
        """On the thread: up to `most` of the scripts queued, run, with their outcomes."""
        conn, queued, group = self._db._conn, self._queued, list[Entry]()
        while len(group) < self._most:
            try:
                group.append(queued.popleft())
            except IndexError:
                break
        try:
            if len(group) == 1:
                self._alone(conn, group[0])
            elif group:
                self._together(conn, group)
        except BaseException as exc:  # a bug here: nothing of the group is known to be kept, nobody waits forever
            _rollback(conn)
            for entry in group:
                entry.script.close()
                entry.error, entry.value = entry.error or exc, None
        return group

    def _alone(self, conn: sqlite3.Connection, entry: Entry) -> None:
        """A script with nothing queued beside it, as it always ran: each statement its own transaction, or
        (atomic) all in one, rolled back on any error."""
        if not entry.atomic:
            entry.error = self._steps(conn, entry)
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            entry.script.close()
            entry.error = exc
            return
        entry.error = self._steps(conn, entry)
        try:
            if entry.error is None:
                conn.execute("COMMIT")
            elif conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            _rollback(conn)
            entry.error, entry.value = exc, None

    def _together(self, conn: sqlite3.Connection, group: list[Entry]) -> None:
        """Several scripts in one transaction (a new one after any that SQLite rolled back itself); see the
        module's promises."""
        held: list[Entry] = []  # whose writes wait for the COMMIT
        for at, entry in enumerate(group):
            if not conn.in_transaction:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:  # busy past the timeout (another process writes), or failing
                    for rest in group[at:]:
                        rest.script.close()
                        rest.error = exc
                    return
            try:
                if entry.atomic:
                    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
                entry.error = self._steps(conn, entry)
                if entry.atomic and conn.in_transaction:
                    if entry.error is not None:
                        conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    conn.execute(f"RELEASE {_SAVEPOINT}")
            except sqlite3.Error as exc:  # the savepoint's own statements failed
                entry.script.close()
                entry.error, entry.value = entry.error or exc, None
            if conn.in_transaction:
                held.append(entry)
            else:  # SQLite rolled the transaction back: what the group wrote in it is gone
                _lost(held, entry.error or sqlite3.OperationalError("the transaction was rolled back"))
                held = []
        if conn.in_transaction:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                _lost(held, exc)

    def _steps(self, conn: sqlite3.Connection, entry: Entry) -> BaseException | None:
        """Run the script's statements, sending each its rows: None once it has returned (its value kept),
        else what it raised (a statement's error, or its own)."""
        script, prepare = entry.script, self._prepare
        try:
            step = next(script)
            while True:
                rows: list[Row] = []
                if not isinstance(step, Serialize):  # SQLite: a writing statement takes the write lock first
                    rows = conn.execute(*prepare(*step)).fetchall()
                step = script.send(rows)
        except StopIteration as done:
            entry.value, entry.finished = done.value, True
            return None
        except BaseException as exc:
            return exc
        finally:
            script.close()


def _lost(entries: list[Entry], cause: BaseException) -> None:
    """The writes of `entries` were rolled back with their transaction: each caller gets an error, not a result."""
    for entry in entries:
        if entry.error is None:
            entry.error = sqlite3.OperationalError(f"rolled back with the transaction it shared: {cause}")
        entry.value = None


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):  # the connection is failing: the next BEGIN says so to its callers
            conn.execute("ROLLBACK")


def _deliver(group: list[Entry]) -> None:
    """On the event loop: each caller's outcome (a cancelled caller's future is left alone)."""
    for entry in group:
        if entry.done is None or entry.done.done():
            continue
        if entry.error is None:
            entry.done.set_result(entry.value)
        else:
            entry.done.set_exception(entry.error)
