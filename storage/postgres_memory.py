"""Semantic memory on PostgreSQL: vectors as float32 bytea, read in keyset pages (see storage/memory_sql.py).

pgvector is not assumed: many managed and packaged servers lack it (this project's CI server does).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from storage import memory_sql as sql
from storage.memory_records import EMBEDDED, SKIPPED, MemoryHit, PendingText, VectorPage, VectorScope
from storage.postgres.database import translated


class PostgresMemory:
    """Message vectors in PostgreSQL; several processes' embedders share the work (SKIP LOCKED)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_pending(self, limit: int, now: datetime, lease_until: datetime) -> list[PendingText]:
        """Up to `limit` messages waiting for a vector, claimed until `lease_until`, oldest first.

        Rows another process is claiming at this moment are skipped, not waited for.
        """
        async with translated(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                "WITH claimed AS (UPDATE messages SET embed_claimed_until = $3 WHERE id IN ("
                "   SELECT m.id FROM messages m"
                f"  WHERE {sql.PENDING_FILTER.format(now='$1')} ORDER BY m.id LIMIT $2 FOR UPDATE SKIP LOCKED)"
                " RETURNING id)"
                f" SELECT {sql.PENDING_COLUMNS} FROM claimed JOIN messages m ON m.id = claimed.id"
                " JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id",
                now.isoformat(),
                limit,
                lease_until.isoformat(),
            )
        return [PendingText(*row) for row in rows]

    async def save_vectors(self, model: str, vectors: Sequence[tuple[int, bytes]]) -> None:
        """Store vectors (unit-length float32 bytes) and mark their messages embedded."""
        if not vectors:
            return
        async with translated(), self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(sql.save_vector_sql("$"), [(mid, model, blob) for mid, blob in vectors])
            await conn.execute(sql.mark_sql("$", EMBEDDED), sql.ids_param("$", [mid for mid, _ in vectors]))

    async def skip(self, message_ids: Sequence[int]) -> None:
        """Never embed these messages (the model refused them)."""
        if message_ids:
            async with translated(), self._pool.acquire() as conn:
                await conn.execute(sql.mark_sql("$", SKIPPED), sql.ids_param("$", message_ids))

    async def requeue_other_models(self, model: str) -> int:
        """Messages embedded with another model (or size) wait to be embedded again; returns how many."""
        async with translated(), self._pool.acquire() as conn:
            return len(await conn.fetch(sql.requeue_sql("$") + " RETURNING 1", model))

    async def scan(self, scope: VectorScope, after_id: int, limit: int) -> VectorPage:
        """One page of vectors after `after_id`, aggregated by the server into one id array and one bytea:
        two values to decode per page instead of two per vector.

        Both aggregates read the same rows in the same order, so ids and vectors stay aligned; the
        page's order is the subquery's (ORDER BY inside the aggregates would sort megabytes again).
        """
        query, params = sql.scan_sql("$", scope, after_id, limit)
        paged = f"SELECT array_agg(message_id), string_agg(vector, ''::bytea) FROM ({query}) page"
        async with translated(), self._pool.acquire() as conn:
            ids, vectors = await conn.fetchrow(paged, *params)
        return VectorPage(list(ids or ()), vectors or b"")

    async def channels(self, platform: str, team_id: str, model: str) -> list[str]:
        """The team's channels that hold vectors of `model`."""
        async with translated(), self._pool.acquire() as conn:
            return [row[0] for row in await conn.fetch(sql.channels_sql("$"), platform, team_id, model)]

    async def hits(self, message_ids: Sequence[int]) -> list[MemoryHit]:
        """The messages behind `message_ids` (those still stored), in no particular order."""
        if not message_ids:
            return []
        async with translated(), self._pool.acquire() as conn:
            return [sql.hit(row) for row in await conn.fetch(sql.hits_sql("$"), sql.ids_param("$", message_ids))]
