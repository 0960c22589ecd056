"""The PostgreSQL Store: the rules of storage/sql/store.py on an asyncpg pool, so several bot
processes share one database; and turn leases, which only PostgreSQL needs."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from storage.base import StoreFailed, StoreUnavailable
from storage.postgres.database import PostgresDatabase
from storage.postgres.ledger import PostgresLedger
from storage.postgres.memory import PostgresMemory
from storage.postgres.migrations import MIGRATIONS
from storage.postgres.turn_statements import (
    LOCK_CONVERSATIONS,
    MESSAGE_INSERT,
    OPEN_AND_ASK,
    RECOUNT,
    TAKE_LEASE,
    WINDOW_TO,
    joined,
)
from storage.postgres.warm_up import warm
from storage.records import ConversationKey, StoredMessage, TurnLease, WindowMessage
from storage.renewal_loop import RenewalLoop
from storage.sql.connection import Connection, Script, Statement
from storage.sql.migrations import apply_migrations
from storage.sql.store import (
    OPEN_CONVERSATION,
    ConversationRead,
    SQLStore,
    conversation_of,
    key_params,
    message_params,
    stored_message,
)
from storage.turn_records import TurnOpening

log = logging.getLogger(__name__)

TURN_LEASE_SECONDS = 60.0  # renewed every third of it while a turn runs

# Every lease this process holds, renewed by one statement.
_KEEP_LEASES = (
    "UPDATE turn_leases SET expires_at = now() + make_interval(secs => $3)"
    " FROM unnest(CAST($1 AS text[]), CAST($2 AS text[])) AS held (key, token)"
    " WHERE turn_leases.key = held.key AND turn_leases.token = held.token"
)
_DROP_LEASE = "DELETE FROM turn_leases WHERE key = $1 AND token = $2"


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a connection going back to the pool needs beyond asyncpg's own rollback of an open transaction:
    nothing. Its default reset (unlock advisory locks, close cursors, unlisten, reset settings) is one more
    round trip on every release, and this store leaves none of those behind: its locks are
    transaction-scoped, the migrations' session lock is unlocked explicitly, and it opens no cursor,
    listens to nothing and changes no setting."""


class PostgresStore(SQLStore):
    """A Store on PostgreSQL through a connection pool."""

    MESSAGE_INSERT = MESSAGE_INSERT  # moves the conversation's running total on (storage/postgres/turn_statements.py)

    def __init__(self, pool: asyncpg.Pool, *, lease_seconds: float = TURN_LEASE_SECONDS) -> None:
        db = PostgresDatabase(pool)
        super().__init__(db, PostgresMemory(db), PostgresLedger(db))
        self._lease_seconds = lease_seconds
        self._leases: dict[str, str] = {}  # the turn leases this process holds (token: name), renewed by one loop
        self._renewals = RenewalLoop("turn leases", lease_seconds / 3, lambda: bool(self._leases), self._keep_leases)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        busy_timeout_ms: int = 5_000,
        max_size: int = 10,
        lease_seconds: float = TURN_LEASE_SECONDS,
        keep_connections: bool = False,
    ) -> PostgresStore:
        """Connect the pool (row-lock waits bounded by `busy_timeout_ms`) and migrate. A turn's lease lapses
        `lease_seconds` after its holder last renewed it.

        Every statement is prepared once per connection (asyncpg's cache) and runs with its generic plan
        (`plan_cache_mode`): under the default, PostgreSQL kept planning some of a turn's statements again on
        every run (the in-flight claim, the limits check: ~0.13 ms of the server's CPU each, read with
        log_statement_stats), since each looks up rows by key and a plan made for one key suits every key.

        With `keep_connections` (a process that serves turns), the pool's `max_size` connections are opened here and
        kept: a burst of turns never waits for connections to be opened (each a new server process, its caches
        cold), first thing or after a quiet spell. Measured on 200 first turns at once, 2.28 -> 2.10 times one turn
        alone (medians of 3 runs). Each is then warmed (storage/postgres/warm_up.py). Without it (a one-off command),
        one is opened, more as needed."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=max_size if keep_connections else 1,
                max_size=max_size,
                # Kept connections need no idle timer, armed on every release.
                max_inactive_connection_lifetime=0 if keep_connections else 300,
                server_settings={
                    "lock_timeout": str(busy_timeout_ms),
                    "plan_cache_mode": "force_generic_plan",
                    # Kept connections may idle for hours: probes keep NATs and load balancers from dropping them.
                    "tcp_keepalives_idle": "60",
                },
                reset=_keep_session,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            applied = await apply_migrations(PostgresDatabase(pool), MIGRATIONS)
        except (asyncpg.PostgresError, StoreFailed) as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot migrate PostgreSQL: {exc}") from exc
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        store = cls(pool, lease_seconds=lease_seconds)
        if keep_connections:
            try:
                await warm(store, pool)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:  # only slower: say so, go on
                log.warning("could not warm the database connections (the first turns prepare them): %s", exc)
        return store

    @asynccontextmanager
    async def turn_lock(self, key: ConversationKey) -> AsyncIterator[TurnLease | None]:
        """A lease on the thread (a `turn_leases` row), renewed while the turn runs, released after.

        No connection is held while a turn waits for the model, so a process runs as many turns at
        once as MAX_TURNS_IN_FLIGHT allows, not as many as it has connections. Waiting for a lease
        another process holds (two processes answering one thread, which is rare) polls with a
        backoff. A crashed holder's lease lapses within its `lease_seconds`. Times are the server's. One
        loop renews every lease the process holds (`_keep_leases`), rather than a task per turn.
        """
        name = f"{key.platform}:{key.team_id}:{key.channel_id}:{key.thread_id}"
        token = secrets.token_hex(8)
        wait = 0.01
        while not await self._take_lease(name, token):
            await asyncio.sleep(wait)
            wait = min(wait * 2, 0.25)
        self._leases[token] = name
        self._renewals.start()
        lease = TurnLease(name, token)
        try:
            yield lease
        finally:
            del self._leases[token]
            if not lease.released:  # else it went with the turn's reply (add_reply)
                await asyncio.shield(self._drop_lease(name, token))

    def _open_conversation(self, opening: TurnOpening) -> Script[ConversationRead]:
        """The open conversation read and, when its system prompt surely leaves the question room, the question
        stored with it and its widest window read (none open: one started with the question, its whole window): one
        statement, OPEN_AND_ASK."""
        eager = opening.eager
        if eager is None or eager.message.images:  # images go in a transaction of their own (_add_message)
            return (yield from super()._open_conversation(opening))
        room = (eager.default_fits, eager.prompt_bytes)
        asking = message_params(0, eager.message)[1:]
        now = opening.now.isoformat()
        rows = yield (OPEN_AND_ASK, (*key_params(opening.key), *room, *asking, eager.widest_window, now))
        if not rows:  # started meanwhile by another process
            rows = yield (OPEN_CONVERSATION, key_params(opening.key))
            return ConversationRead(conversation_of(opening.key, rows[0]))
        asked, before = rows[0][5], rows[0][6]
        earlier = [WindowMessage._make(row[7:]) for row in rows if row[10] is not None]
        conversation = conversation_of(opening.key, rows[0])
        if asked is None:
            return ConversationRead(conversation)
        message = eager.message
        question = WindowMessage(message.role, message.content, message.tokens, int(asked), int(before))
        stored = stored_message(int(asked), conversation.id, message)
        return ConversationRead(conversation, stored, (*earlier, question))

    def _window_to(
        self, conversation_id: int, question: StoredMessage, window_tokens: int
    ) -> Script[list[WindowMessage]]:
        """The window that ends at the question, by a statement of its own: the question's insert, whose snapshot
        was taken before it waited for the conversation's row, may miss a message that the writer it waited for
        committed."""
        if window_tokens <= 0:
            return []
        return list(map(WindowMessage._make, (yield (WINDOW_TO, (question.id, window_tokens)))))

    async def _close_turn(self, statements: list[Statement]) -> tuple[int, bool]:
        """The reply's statements joined into one, on its own: one round trip, one commit. Its insert moves the
        conversation's running total on itself, so no lock is taken before it, and the team's usage totals that its
        settlement updates are held for that statement only. Its parts run in the order they are read: the reply
        first, so the conversation's row is taken before the usage totals, in the order /forget takes them."""
        sql, args = joined(statements, returning=2)
        [(reply_id, settled)] = await self._db.fetch(sql, *args)
        return int(reply_id), settled is not None

    async def _lock_totals(self, tx: Connection, conversations: str, *params: object) -> list[int]:
        """The conversations named, their rows locked in id order: RECOUNT, later in `tx`, sees all their messages."""
        return [int(row[0]) for row in await tx.fetch(LOCK_CONVERSATIONS.format(conversations), *params)]

    async def _recount(self, tx: Connection, conversation_ids: list[int]) -> None:
        """The conversations' running totals set again from their messages (`tx` holds their rows)."""
        if conversation_ids:
            await tx.execute(RECOUNT, conversation_ids)

    def lease_release(self, lease: TurnLease) -> list[Statement]:
        """Drop the turn's lease row in the transaction that stores its reply."""
        return [(_DROP_LEASE, (lease.name, lease.token))]

    async def _take_lease(self, name: str, token: str) -> bool:
        return bool(await self._db.fetchval(TAKE_LEASE, name, token, self._lease_seconds))

    async def _keep_leases(self) -> None:
        """Renew every held lease in one statement: a round of `RenewalLoop`, every third of `lease_seconds`, so
        two rounds can fail in a row before one lapses."""
        tokens, names = list(self._leases), list(self._leases.values())
        try:
            await self._db.execute(_KEEP_LEASES, names, tokens, self._lease_seconds)
        except (StoreFailed, asyncpg.PostgresError):
            log.warning("could not renew %d turn lease(s); retrying", len(names), exc_info=True)

    async def close(self) -> None:
        """Stop renewing turn leases (at shutdown, once every turn has ended), then close the pool."""
        await self._renewals.close()
        await super().close()

    async def _drop_lease(self, name: str, token: str) -> None:
        try:
            await self._db.execute(_DROP_LEASE, name, token)
        except (StoreFailed, asyncpg.PostgresError):
            log.warning("could not release the turn lease on %s; it lapses by itself", name, exc_info=True)
