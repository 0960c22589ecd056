"""Semantic memory on PostgreSQL: what differs from SQLite (see storage/sql/memory.py).

pgvector is not assumed: many managed and packaged servers lack it (this project's CI server does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.memory_records import PendingText, VectorPage
from storage.sql.memory import PENDING_COLUMNS, PENDING_FILTER, SQLMemory

_CLAIM = (
    "WITH claimed AS (UPDATE messages SET embed_claimed_until = $3 WHERE id IN ("
    f"   SELECT m.id FROM messages m WHERE {PENDING_FILTER} ORDER BY m.id LIMIT $2 FOR UPDATE SKIP LOCKED)"
    " RETURNING id)"
    f" SELECT {PENDING_COLUMNS} FROM claimed JOIN messages m ON m.id = claimed.id"
    " JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id"
)


class PostgresMemory(SQLMemory):
    """Message vectors in PostgreSQL; several processes' embedders share the work (SKIP LOCKED)."""

    async def claim_pending(self, limit: int, now: datetime, lease_until: datetime) -> list[PendingText]:
        """One statement; rows another process is claiming at this moment are skipped, not waited for."""
        rows = await self._db.fetch(_CLAIM, now.isoformat(), limit, lease_until.isoformat())
        return [PendingText(*row) for row in rows]

    async def page(self, sql: str, params: list[Any]) -> VectorPage:
        """The page aggregated by the server into one id array and one bytea: two values to decode per
        page instead of two per vector.

        Both aggregates read the same rows in the same order, so ids and vectors stay aligned; the
        page's order is the subquery's (ORDER BY inside the aggregates would sort megabytes again).
        """
        paged = f"SELECT array_agg(message_id), string_agg(vector, ''::bytea) FROM ({sql}) page"
        row = await self._db.fetchrow(paged, *params)
        assert row is not None  # an aggregate: always one row
        return VectorPage(list(row[0] or ()), row[1] or b"")
