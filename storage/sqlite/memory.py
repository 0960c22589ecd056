"""Semantic memory on SQLite: what differs from PostgreSQL (see storage/sql/memory.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.memory_records import PendingText, VectorPage
from storage.sql.memory import PENDING_COLUMNS, PENDING_FILTER, SQLMemory

_PENDING = (
    f"SELECT {PENDING_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    f" WHERE {PENDING_FILTER} ORDER BY m.id LIMIT $2"
)
_CLAIM = "UPDATE messages SET embed_claimed_until = $1 WHERE id IN (LIST($2 AS bigint))"


class SQLiteMemory(SQLMemory):
    """Message vectors in the bot's SQLite file. Each page is its own short statement, so a long
    scan never holds the shared connection for long."""

    async def claim_pending(self, limit: int, now: datetime, lease_until: datetime) -> list[PendingText]:
        """Read and claim in one transaction: there is one writer, so nobody else claims meanwhile."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch(_PENDING, now.isoformat(), limit)
            if rows:
                await tx.execute(_CLAIM, lease_until.isoformat(), [row[0] for row in rows])
        return [PendingText(*row) for row in rows]

    async def page(self, sql: str, params: list[Any]) -> VectorPage:
        """The page's rows, joined here."""
        rows = await self._db.fetch(sql, *params)
        return VectorPage([row[0] for row in rows], b"".join(row[1] for row in rows))
