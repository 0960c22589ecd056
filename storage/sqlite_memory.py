"""Semantic memory on SQLite: vectors as float32 BLOBs, read in keyset pages (see storage/memory_sql.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from storage import memory_sql as sql
from storage.memory_records import EMBEDDED, SKIPPED, MemoryHit, PendingText, VectorPage, VectorScope

if TYPE_CHECKING:
    from storage.sqlite.database import SQLiteDatabase


class SQLiteMemory:
    """Message vectors in the bot's SQLite file. Each page is its own short statement, so a long
    scan never holds the shared connection for long."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def claim_pending(self, limit: int, now: datetime, lease_until: datetime) -> list[PendingText]:
        """Up to `limit` messages waiting for a vector, claimed until `lease_until`, oldest first."""
        async with self._db.raw_transaction() as db:
            rows = list(
                await db.execute_fetchall(
                    f"SELECT {sql.PENDING_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                    f" WHERE {sql.PENDING_FILTER.format(now='?1')} ORDER BY m.id LIMIT ?2",
                    (now.isoformat(), limit),
                )
            )
            if rows:
                await db.execute(
                    "UPDATE messages SET embed_claimed_until = ?1 WHERE id IN (SELECT value FROM json_each(?2))",
                    (lease_until.isoformat(), sql.ids_param("?", [row[0] for row in rows])),
                )
        return [PendingText(*row) for row in rows]

    async def save_vectors(self, model: str, vectors: Sequence[tuple[int, bytes]]) -> None:
        """Store vectors (unit-length float32 bytes) and mark their messages embedded."""
        if not vectors:
            return
        async with self._db.raw_transaction() as db:
            await db.executemany(sql.save_vector_sql("?"), [(mid, model, blob) for mid, blob in vectors])
            await db.execute(sql.mark_sql("?", EMBEDDED), (sql.ids_param("?", [mid for mid, _ in vectors]),))

    async def skip(self, message_ids: Sequence[int]) -> None:
        """Never embed these messages (the model refused them)."""
        if message_ids:
            await self._db.fetchall(sql.mark_sql("?", SKIPPED), (sql.ids_param("?", message_ids),))

    async def requeue_other_models(self, model: str) -> int:
        """Messages embedded with another model (or size) wait to be embedded again; returns how many."""
        return len(await self._db.fetchall(sql.requeue_sql("?") + " RETURNING 1", (model,)))

    async def scan(self, scope: VectorScope, after_id: int, limit: int) -> VectorPage:
        """One page of vectors in message-id order after `after_id`."""
        query, params = sql.scan_sql("?", scope, after_id, limit)
        rows = await self._db.fetchall(query, params)
        return VectorPage([row[0] for row in rows], b"".join(row[1] for row in rows))

    async def channels(self, platform: str, team_id: str, model: str) -> list[str]:
        """The team's channels that hold vectors of `model`."""
        return [row[0] for row in await self._db.fetchall(sql.channels_sql("?"), (platform, team_id, model))]

    async def hits(self, message_ids: Sequence[int]) -> list[MemoryHit]:
        """The messages behind `message_ids` (those still stored), in no particular order."""
        if not message_ids:
            return []
        return [sql.hit(row) for row in await self._db.fetchall(sql.hits_sql("?"), (sql.ids_param("?", message_ids),))]
