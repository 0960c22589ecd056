"""The migrations runner, for both databases: an ordered, append-only list of named migrations
(the shape of simonw/llm's), each applied once, in its own transaction, and recorded in `_migrations`.

The lists themselves are per database, since DDL is where the two differ (column types, triggers,
storage options): storage/sqlite/migrations.py and storage/postgres/migrations.py, same names, same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from storage.sql.connection import Database

# The message right before `messages` (the row an UPDATE is on) in its conversation: used by both lists'
# security_reply_links to link the replies stored before replies named their question.
PREVIOUS_MESSAGE = (
    "SELECT max(p.id) FROM messages p WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id"
)


class Migration:
    """One named schema change: statements run in order, in one transaction."""

    def __init__(self, name: str, *statements: str) -> None:
        self.name = name
        self.statements = statements

    def __repr__(self) -> str:
        return f"Migration({self.name!r})"


async def apply_migrations(database: Database, migrations: Sequence[Migration]) -> list[str]:
    """Run every migration not yet recorded; returns the names applied.

    In one session holding the migration lock (PostgreSQL), each in a transaction that looks again
    whether it ran (SQLite: BEGIN IMMEDIATE keeps other processes out meanwhile).
    """
    applied: list[str] = []
    async with database.session() as db:
        await db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for migration in migrations:
            async with db.transaction() as tx:
                if await tx.fetchval("SELECT 1 FROM _migrations WHERE name = $1", migration.name):
                    continue
                for statement in migration.statements:
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES ($1, $2)",
                    migration.name,
                    datetime.now(UTC).isoformat(),
                )
            applied.append(migration.name)
    return applied
