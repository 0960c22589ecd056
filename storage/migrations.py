"""SQLite schema as data: an ordered, append-only list of named migrations (the shape of simonw/llm's).

Never edit or reorder a migration that has shipped; add a new one. `_migrations` records which ran.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiosqlite

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration, named after the function."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


async def apply_migrations(db: aiosqlite.Connection) -> list[str]:
    """Run every migration not yet recorded, each in its own transaction; returns the names applied."""
    await db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied: list[str] = []
    for name, fn in MIGRATIONS:
        await db.execute("BEGIN IMMEDIATE")
        try:
            async with db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)) as cur:
                done = await cur.fetchone() is not None
            if not done:
                await fn(db)
                await db.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (name, datetime.now(UTC).isoformat()),
                )
                applied.append(name)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
    return applied


@migration
async def m001_conversations(db: aiosqlite.Connection) -> None:
    await db.execute(
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            platform TEXT NOT NULL,
            team_id TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            thread_id TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            ended_at TEXT
        )
        """
    )
    # At most one open conversation per thread; ended ones stay for history and export.
    await db.execute(
        """
        CREATE UNIQUE INDEX conversations_open
        ON conversations (platform, team_id, channel_id, thread_id) WHERE ended_at IS NULL
        """
    )


@migration
async def m002_messages(db: aiosqlite.Connection) -> None:
    # tokens_before = sum of `tokens` of every earlier message in the conversation, fixed at insert.
    # The context window is then one range scan on (conversation_id, tokens_before): O(window).
    await db.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL CHECK (tokens >= 0),
            tokens_before INTEGER NOT NULL CHECK (tokens_before >= 0),
            author_id TEXT NOT NULL DEFAULT '',
            author_name TEXT NOT NULL DEFAULT '',
            platform_message_id TEXT NOT NULL DEFAULT '',
            model TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            created_at TEXT NOT NULL
        )
        """
    )
    await db.execute("CREATE INDEX messages_window ON messages (conversation_id, tokens_before)")
