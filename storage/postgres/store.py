"""The PostgreSQL Store (asyncpg pool): several bot processes share one database.

Writes that read before they write (a new conversation, a turn's running token total, a
reservation) take a row or advisory lock in their transaction, so concurrent processes stay exact.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from storage.base import StoreFailed, StoreUnavailable
from storage.postgres.database import PostgresDatabase, translated
from storage.postgres.migrations import MIGRATIONS
from storage.postgres_memory import PostgresMemory
from storage.postgres_prompts import PostgresPromptLibrary
from storage.records import (
    ChannelSettings,
    Conversation,
    ConversationKey,
    ModelUsage,
    NewMessage,
    StoredMessage,
    WindowMessage,
)
from storage.sql.ledger import SQLLedger
from storage.sql.migrations import apply_migrations

log = logging.getLogger(__name__)

TURN_LEASE_SECONDS = 60.0  # renewed every third of it while a turn runs

_OPEN_CONVERSATION = (
    "SELECT c.id, c.created_at, c.system_prompt, s.model FROM conversations c LEFT JOIN channel_settings s"
    " ON s.platform = c.platform AND s.team_id = c.team_id AND s.channel_id = c.channel_id"
    " WHERE c.platform = $1 AND c.team_id = $2 AND c.channel_id = $3 AND c.thread_id = $4 AND c.ended_at IS NULL"
)


class PostgresStore:
    """A Store on PostgreSQL through a connection pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._ledger = SQLLedger(PostgresDatabase(pool))
        self._prompts = PostgresPromptLibrary(pool)
        self._memory = PostgresMemory(pool)

    @property
    def memory(self) -> PostgresMemory:
        """Message embeddings, on the same pool."""
        return self._memory

    @classmethod
    async def open(cls, url: str, *, busy_timeout_ms: int = 5_000, max_size: int = 10) -> PostgresStore:
        """Connect the pool (row-lock waits bounded by `busy_timeout_ms`) and migrate."""
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=max_size, server_settings={"lock_timeout": str(busy_timeout_ms)}
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
        return cls(pool)

    @property
    def ledger(self) -> SQLLedger:
        """The usage ledger, on the same pool."""
        return self._ledger

    @property
    def prompts(self) -> PostgresPromptLibrary:
        """The team prompt library, on the same pool."""
        return self._prompts

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    @asynccontextmanager
    async def turn_lock(self, key: ConversationKey) -> AsyncIterator[None]:
        """A lease on the thread (a `turn_leases` row), renewed while the turn runs, released after.

        No connection is held while a turn waits for the model, so a process runs as many turns at
        once as MAX_TURNS_IN_FLIGHT allows, not as many as it has connections. Waiting for a lease
        another process holds (two processes answering one thread, which is rare) polls with a
        backoff. A crashed holder's lease lapses within TURN_LEASE_SECONDS. Times are the server's.
        """
        name = f"{key.platform}:{key.team_id}:{key.channel_id}:{key.thread_id}"
        token = secrets.token_hex(8)
        wait = 0.01
        while not await self._take_lease(name, token):
            await asyncio.sleep(wait)
            wait = min(wait * 2, 0.25)
        renewing = asyncio.create_task(self._keep_lease(name, token))
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.shield(self._drop_lease(name, token))

    async def _take_lease(self, name: str, token: str) -> bool:
        async with translated():
            taken = await self._pool.fetchval(
                "INSERT INTO turn_leases (key, token, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))"
                " ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at"
                " WHERE turn_leases.expires_at < now() RETURNING true",
                name, token, TURN_LEASE_SECONDS,
            )  # fmt: skip
        return bool(taken)

    async def _keep_lease(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(TURN_LEASE_SECONDS / 3)
            try:
                await self._pool.execute(
                    "UPDATE turn_leases SET expires_at = now() + make_interval(secs => $3)"
                    " WHERE key = $1 AND token = $2",
                    name, token, TURN_LEASE_SECONDS,
                )  # fmt: skip
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("could not renew the turn lease on %s; retrying", name, exc_info=True)

    async def _drop_lease(self, name: str, token: str) -> None:
        try:
            await self._pool.execute("DELETE FROM turn_leases WHERE key = $1 AND token = $2", name, token)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("could not release the turn lease on %s; it lapses by itself", name, exc_info=True)

    async def has_open_conversation(self, key: ConversationKey) -> bool:
        """Whether a conversation is open at `key`."""
        async with translated():
            row = await self._pool.fetchrow(
                _OPEN_CONVERSATION, key.platform, key.team_id, key.channel_id, key.thread_id
            )
        return row is not None

    async def active_conversation(self, key: ConversationKey, now: datetime) -> Conversation:
        """The open conversation at `key`, started now (with the channel's persona) if there is none."""
        params = (key.platform, key.team_id, key.channel_id, key.thread_id)
        async with translated(), self._pool.acquire() as conn:
            row = await conn.fetchrow(_OPEN_CONVERSATION, *params)
            if row is None:
                # ON CONFLICT on the partial unique index: two processes starting the same thread agree on one.
                await conn.execute(
                    "INSERT INTO conversations (platform, team_id, channel_id, thread_id, created_at, system_prompt)"
                    " VALUES ($1, $2, $3, $4, $5, (SELECT persona FROM channel_settings"
                    "   WHERE platform = $1 AND team_id = $2 AND channel_id = $3))"
                    " ON CONFLICT (platform, team_id, channel_id, thread_id) WHERE ended_at IS NULL DO NOTHING",
                    *params,
                    now.isoformat(),
                )
                row = await conn.fetchrow(_OPEN_CONVERSATION, *params)
        assert row is not None
        return Conversation(row[0], key, datetime.fromisoformat(row[1]), row[2], row[3])

    async def channel_settings(self, platform: str, team_id: str, channel_id: str) -> ChannelSettings:
        """The channel's persona and model (all None when never set)."""
        async with translated():
            row = await self._pool.fetchrow(
                "SELECT persona, persona_source, model FROM channel_settings"
                " WHERE platform = $1 AND team_id = $2 AND channel_id = $3",
                platform, team_id, channel_id,
            )  # fmt: skip
        return ChannelSettings(*row) if row else ChannelSettings()

    async def set_channel_settings(
        self, platform: str, team_id: str, channel_id: str, settings: ChannelSettings, by: str, now: datetime
    ) -> None:
        """Replace the channel's persona and model."""
        async with translated():
            await self._pool.execute(
                "INSERT INTO channel_settings (platform, team_id, channel_id, persona, persona_source, model,"
                " updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (platform, team_id, channel_id) DO UPDATE SET persona = excluded.persona,"
                " persona_source = excluded.persona_source, model = excluded.model,"
                " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                platform, team_id, channel_id, settings.persona, settings.persona_source, settings.model, by,
                now.isoformat(),
            )  # fmt: skip

    async def end_conversation(self, key: ConversationKey, now: datetime) -> bool:
        """Close the open conversation at `key`; False if there was none."""
        async with translated():
            row = await self._pool.fetchrow(
                "UPDATE conversations SET ended_at = $1 WHERE platform = $2 AND team_id = $3 AND channel_id = $4"
                " AND thread_id = $5 AND ended_at IS NULL RETURNING id",
                now.isoformat(), key.platform, key.team_id, key.channel_id, key.thread_id,
            )  # fmt: skip
        return row is not None

    async def add_message(self, conversation_id: int, message: NewMessage) -> StoredMessage:
        """Append one message; the conversation's row lock keeps running totals exact across processes."""
        usage = message.usage
        async with translated(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", conversation_id)
            new_id = await conn.fetchval(
                "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, author_id, author_name,"
                " platform_message_id, model, prompt_tokens, completion_tokens, created_at)"
                " VALUES ($1, $2, $3, $4, COALESCE((SELECT tokens_before + tokens FROM messages"
                "   WHERE conversation_id = $1 ORDER BY tokens_before DESC, id DESC LIMIT 1), 0),"
                " $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                conversation_id, message.role, message.content, message.tokens, message.author_id,
                message.author_name, message.platform_message_id, usage.model if usage else None,
                usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
                message.created_at.isoformat(),
            )  # fmt: skip
        return StoredMessage(
            id=new_id, conversation_id=conversation_id, role=message.role, content=message.content,
            tokens=message.tokens, created_at=message.created_at, author_id=message.author_id,
            author_name=message.author_name, usage=usage,
        )  # fmt: skip

    async def window(self, conversation_id: int, budget_tokens: int) -> list[WindowMessage]:
        """The newest messages that fit `budget_tokens`, oldest first: one indexed range scan."""
        if budget_tokens <= 0:
            return []
        async with translated():
            rows = await self._pool.fetch(
                "SELECT role, content, tokens, id, tokens_before FROM messages WHERE conversation_id = $1"
                " AND tokens_before >= ("
                "   SELECT tokens_before + tokens FROM messages WHERE conversation_id = $1"
                "   ORDER BY tokens_before DESC, id DESC LIMIT 1) - $2 ORDER BY tokens_before, id",
                conversation_id, budget_tokens,
            )  # fmt: skip
        return [WindowMessage(*r) for r in rows]

    async def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The whole conversation, oldest first."""
        async with translated():
            rows = await self._pool.fetch(
                "SELECT id, conversation_id, role, content, tokens, created_at, author_id, author_name, model,"
                " prompt_tokens, completion_tokens FROM messages WHERE conversation_id = $1 ORDER BY tokens_before, id",
                conversation_id,
            )
        return [
            StoredMessage(
                id=r[0],
                conversation_id=r[1],
                role=r[2],
                content=r[3],
                tokens=r[4],
                created_at=datetime.fromisoformat(r[5]),
                author_id=r[6],
                author_name=r[7],
                usage=ModelUsage(r[8], r[9], r[10]) if r[8] is not None else None,
            )
            for r in rows
        ]

    async def forget_user(self, team_id: str, user_id: str, pseudonym: str) -> dict[str, int]:
        """Delete a user's messages (and replies), prompt runs and ratings; pseudonymize the rest."""
        mine = (
            "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.team_id = $1 AND m.role = 'user' AND m.author_id = $2"
        )
        replies = (
            "SELECT (SELECT min(r.id) FROM messages r WHERE r.conversation_id = m.conversation_id"
            f" AND r.id > m.id AND r.role = 'assistant') FROM messages m WHERE m.id IN ({mine})"
        )
        runs = "SELECT id FROM prompt_runs WHERE team_id = $1 AND user_id = $2"
        counts: dict[str, int] = {}
        async with translated(), self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"DELETE FROM messages WHERE id IN ({mine}) OR id IN ({replies}) RETURNING role", team_id, user_id
            )
            counts["messages"] = sum(1 for r in rows if r[0] == "user")
            counts["replies"] = sum(1 for r in rows if r[0] == "assistant")
            counts["ratings"] = len(
                await conn.fetch(
                    "DELETE FROM prompt_ratings WHERE user_id = $2 AND run_id IN"
                    " (SELECT id FROM prompt_runs WHERE team_id = $1) RETURNING 1",
                    team_id,
                    user_id,
                )
            )
            await conn.execute(f"DELETE FROM prompt_ratings WHERE run_id IN ({runs})", team_id, user_id)
            counts["prompt runs"] = len(
                await conn.fetch(f"DELETE FROM prompt_runs WHERE id IN ({runs}) RETURNING 1", team_id, user_id)
            )
            pseudonymized = 0
            for sql in (
                "UPDATE usage_ledger SET user_id = $3 WHERE team_id = $1 AND user_id = $2",
                "UPDATE usage_totals SET subject = $3 WHERE team_id = $1 AND scope = 'user' AND subject = $2",
                "UPDATE prompts SET created_by = $3 WHERE team_id = $1 AND created_by = $2",
                "UPDATE prompt_versions SET author_id = $3 WHERE author_id = $2"
                " AND prompt_id IN (SELECT id FROM prompts WHERE team_id = $1)",
                "UPDATE quota_changes SET changed_by = $3 WHERE team_id = $1 AND changed_by = $2",
            ):
                status = await conn.execute(sql, team_id, user_id, pseudonym)
                pseudonymized += int(status.split()[-1])
            counts["records pseudonymized"] = pseudonymized
        return counts

    async def claim_delivery(self, platform: str, delivery_id: str, now: datetime) -> bool:
        """True the first time (platform, delivery_id) is seen, in any process."""
        async with translated():
            row = await self._pool.fetchrow(
                "INSERT INTO deliveries (platform, delivery_id, claimed_at) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                platform, delivery_id, now.isoformat(),
            )  # fmt: skip
        return row is not None

    async def forget_deliveries(self, before: datetime) -> int:
        """Drop claims older than `before`."""
        async with translated():
            status = await self._pool.execute("DELETE FROM deliveries WHERE claimed_at < $1", before.isoformat())
        return int(status.split()[-1])
