"""Semantic memory for both databases: vectors as float32 bytes, read in keyset pages.

Two things differ and are each database's own: claiming the embedder's queue (PostgreSQL skips
rows another process is claiming; SQLite has one writer) and reading a page (PostgreSQL
aggregates it on the server). See storage/sqlite/memory.py and storage/postgres/memory.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from storage.memory_records import (
    EMBEDDED,
    PENDING,
    SKIPPED,
    MemoryHit,
    MessageVector,
    PendingText,
    VectorPage,
    VectorScope,
)
from storage.sql.connection import Database, Row

# Read by the claim: the text to embed and the team that pays for it.
PENDING_COLUMNS = "m.id, m.content, c.platform, c.team_id, c.channel_id"
PENDING_FILTER = (
    f"m.embed_state = {PENDING} AND m.role IN ('user', 'assistant')"
    " AND (m.embed_claimed_until IS NULL OR m.embed_claimed_until < $1)"
)
HIT_COLUMNS = (
    "m.id, m.conversation_id, m.role, m.content, m.tokens, m.author_name, m.created_at, c.channel_id, c.thread_id,"
    " m.platform_message_id"
)
# Insert (or replace) one message's vector, copying its team and channel; a deleted message adds nothing, and
# neither does one edited since its text was read: the edit left it waiting, to be embedded with its new text.
SAVE_VECTOR = (
    "INSERT INTO message_vectors (message_id, conversation_id, platform, team_id, channel_id, created_at, model,"
    " vector) SELECT m.id, m.conversation_id, c.platform, c.team_id, c.channel_id, m.created_at, $2, $3"
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = $1 AND m.content = $4"
    " ON CONFLICT (message_id) DO UPDATE SET model = excluded.model, vector = excluded.vector"
)
# Mark a message embedded (dropping its claim) if it still says what was embedded.
MARK_EMBEDDED = (
    f"UPDATE messages SET embed_state = {EMBEDDED}, embed_claimed_until = NULL WHERE id = $1 AND content = $2"
)
MARK_SKIPPED = (
    f"UPDATE messages SET embed_state = {SKIPPED}, embed_claimed_until = NULL WHERE id IN (LIST($1 AS bigint))"
)
# Embedded messages whose vector is of another model: back to waiting (their old vector stays till then).
# `<` or `>` rather than `<>`, so both sides read the model index: instant when there are none.
REQUEUE = (
    f"UPDATE messages SET embed_state = {PENDING}, embed_claimed_until = NULL WHERE embed_state = {EMBEDDED}"
    " AND id IN (SELECT message_id FROM message_vectors WHERE model < $1 OR model > $1) RETURNING 1"
)
# The size a server really returns for a model and a requested size ($2; 0: the model's own).
EMBEDDING_SIZE = "SELECT size FROM embedding_sizes WHERE model = $1 AND requested = $2"
REMEMBER_EMBEDDING_SIZE = (
    "INSERT INTO embedding_sizes (model, requested, size, learned_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (model, requested) DO UPDATE SET size = excluded.size, learned_at = excluded.learned_at"
)
CHANNELS = (
    "SELECT DISTINCT channel_id FROM message_vectors"
    " WHERE platform = $1 AND team_id = $2 AND model = $3 ORDER BY channel_id"
)
HITS = (
    f"SELECT {HIT_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    " WHERE m.id IN (LIST($1 AS bigint))"
)


def scan_sql(scope: VectorScope, after_id: int, limit: int) -> tuple[str, list[Any]]:
    """One page of a scope's vectors in message-id order, after `after_id` (keyset paging)."""
    where = ["platform = $1", "team_id = $2", "model = $3", "message_id > $4"]
    params: list[Any] = [scope.platform, scope.team_id, scope.model, after_id]

    def add(condition: str, value: Any) -> None:
        params.append(value)
        where.append(condition.format(f"${len(params)}"))

    if scope.conversation_id is not None:
        add("conversation_id = {}", scope.conversation_id)
    if scope.before_message_id is not None:
        add("message_id < {}", scope.before_message_id)
    if scope.since is not None:
        add("created_at >= {}", scope.since.isoformat())
    if scope.channels is not None:
        add("channel_id IN (LIST({} AS text))", list(scope.channels))
    params.append(limit)
    sql = (
        f"SELECT message_id, vector FROM message_vectors WHERE {' AND '.join(where)}"
        f" ORDER BY message_id LIMIT ${len(params)}"
    )
    return sql, params


class SQLMemory:
    """Message vectors beside the messages, in the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_pending(self, limit: int, now: datetime, lease_until: datetime) -> list[PendingText]:
        """Up to `limit` messages waiting for a vector, claimed until `lease_until`, oldest first."""
        raise NotImplementedError  # each database's own: see the module's docstring

    async def page(self, sql: str, params: list[Any]) -> VectorPage:
        """The rows of `sql` (message_id, vector) as one page."""
        raise NotImplementedError  # each database's own: see the module's docstring

    async def save_vectors(self, model: str, vectors: Sequence[MessageVector]) -> None:
        """Store vectors and mark their messages embedded, except messages edited since their text was read."""
        if not vectors:
            return
        async with self._db.transaction() as tx:
            await tx.executemany(SAVE_VECTOR, [(v.message_id, model, v.vector, v.content) for v in vectors])
            await tx.executemany(MARK_EMBEDDED, [(v.message_id, v.content) for v in vectors])

    async def skip(self, message_ids: Sequence[int]) -> None:
        """Never embed these messages (the model refused them)."""
        if message_ids:
            await self._db.execute(MARK_SKIPPED, list(message_ids))

    async def requeue_other_models(self, model: str) -> int:
        """Messages embedded with another model (or size) wait to be embedded again; returns how many."""
        return len(await self._db.fetch(REQUEUE, model))

    async def embedding_size(self, model: str, requested: int | None) -> int | None:
        """The vector size the server returned for `model` asked for `requested` (None: never seen)."""
        row = await self._db.fetchrow(EMBEDDING_SIZE, model, requested or 0)
        return None if row is None else int(row[0])

    async def remember_embedding_size(self, model: str, requested: int | None, size: int, now: datetime) -> None:
        """What the server returned, for every later start and every process."""
        await self._db.execute(REMEMBER_EMBEDDING_SIZE, model, requested or 0, size, now.isoformat())

    async def scan(self, scope: VectorScope, after_id: int, limit: int) -> VectorPage:
        """One page of vectors in message-id order after `after_id`."""
        return await self.page(*scan_sql(scope, after_id, limit))

    async def channels(self, platform: str, team_id: str, model: str) -> list[str]:
        """The team's channels that hold vectors of `model`."""
        return [row[0] for row in await self._db.fetch(CHANNELS, platform, team_id, model)]

    async def hits(self, message_ids: Sequence[int]) -> list[MemoryHit]:
        """The messages behind `message_ids` (those still stored), in no particular order."""
        if not message_ids:
            return []
        return [hit(row) for row in await self._db.fetch(HITS, list(message_ids))]


def hit(row: Row) -> MemoryHit:
    """A HITS row as a record."""
    return MemoryHit(
        message_id=row[0], conversation_id=row[1], role=row[2], content=row[3], tokens=row[4],
        author_name=row[5], created_at=datetime.fromisoformat(row[6]), channel_id=row[7], thread_id=row[8],
        platform_message_id=row[9],
    )  # fmt: skip
