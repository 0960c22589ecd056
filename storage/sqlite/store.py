"""The SQLite Store: conversations and messages here, the usage ledger in storage/sql/ledger.py."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.base import StoreFailed, StoreUnavailable
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
from storage.sqlite.database import BUSY_TIMEOUT_MS, SQLiteDatabase
from storage.sqlite.migrations import MIGRATIONS
from storage.sqlite_memory import SQLiteMemory
from storage.sqlite_prompts import SQLitePromptLibrary

log = logging.getLogger(__name__)

_OPEN_CONVERSATION = (
    "SELECT c.id, c.created_at, c.system_prompt, s.model FROM conversations c LEFT JOIN channel_settings s"
    " ON s.platform = c.platform AND s.team_id = c.team_id AND s.channel_id = c.channel_id"
    " WHERE c.platform = ? AND c.team_id = ? AND c.channel_id = ? AND c.thread_id = ? AND c.ended_at IS NULL"
)
_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, tokens, created_at, author_id, author_name,"
    " model, prompt_tokens, completion_tokens"
)


class SQLiteStore:
    """A Store on one SQLite file. Safe for many coroutines; several processes may share the file."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db
        self._ledger = SQLLedger(db)
        self._prompts = SQLitePromptLibrary(db)
        self._memory = SQLiteMemory(db)

    @property
    def memory(self) -> SQLiteMemory:
        """Message embeddings, on the same connection."""
        return self._memory

    @property
    def prompts(self) -> SQLitePromptLibrary:
        """The team prompt library, on the same connection."""
        return self._prompts

    @property
    def ledger(self) -> SQLLedger:
        """The usage ledger, on the same connection."""
        return self._ledger

    @classmethod
    async def open(cls, path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> SQLiteStore:
        """Open (creating and migrating) the database at `path`."""
        db = await SQLiteDatabase.open(path, busy_timeout_ms)
        try:
            applied = await apply_migrations(db, MIGRATIONS)
        except (sqlite3.Error, StoreFailed) as exc:
            await db.close()
            raise StoreUnavailable(f"cannot use SQLite database {path}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        return cls(db)

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    @asynccontextmanager
    async def turn_lock(self, key: ConversationKey) -> AsyncIterator[None]:
        """Nothing to do across processes: a SQLite deployment is one bot process (the engine already
        serializes turns within it). Several processes on one database is what PostgreSQL is for."""
        yield

    async def has_open_conversation(self, key: ConversationKey) -> bool:
        """Whether a conversation is open at `key`."""
        return bool(await self._db.fetchall(_OPEN_CONVERSATION, _key_params(key)))

    async def active_conversation(self, key: ConversationKey, now: datetime) -> Conversation:
        """The open conversation at `key`, started now (with the channel's persona) if there is none."""
        found = await self._db.fetchall(_OPEN_CONVERSATION, _key_params(key))
        if found:
            return _conversation(key, found[0])
        async with self._db.raw_transaction() as db:
            # Look again inside the write lock: another process may have started it meanwhile.
            found = list(await db.execute_fetchall(_OPEN_CONVERSATION, _key_params(key)))
            if not found:
                await db.execute(
                    "INSERT INTO conversations (platform, team_id, channel_id, thread_id, created_at, system_prompt)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, (SELECT persona FROM channel_settings"
                    "   WHERE platform = ?1 AND team_id = ?2 AND channel_id = ?3))",
                    (*_key_params(key), now.isoformat()),
                )
                found = list(await db.execute_fetchall(_OPEN_CONVERSATION, _key_params(key)))
            return _conversation(key, found[0])

    async def channel_settings(self, platform: str, team_id: str, channel_id: str) -> ChannelSettings:
        """The channel's persona and model (all None when never set)."""
        rows = await self._db.fetchall(
            "SELECT persona, persona_source, model FROM channel_settings"
            " WHERE platform = ? AND team_id = ? AND channel_id = ?",
            (platform, team_id, channel_id),
        )
        return ChannelSettings(*rows[0]) if rows else ChannelSettings()

    async def set_channel_settings(
        self, platform: str, team_id: str, channel_id: str, settings: ChannelSettings, by: str, now: datetime
    ) -> None:
        """Replace the channel's persona and model."""
        await self._db.fetchall(
            "INSERT INTO channel_settings (platform, team_id, channel_id, persona, persona_source, model,"
            " updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, team_id, channel_id)"
            " DO UPDATE SET persona = excluded.persona, persona_source = excluded.persona_source,"
            " model = excluded.model, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (platform, team_id, channel_id, settings.persona, settings.persona_source, settings.model, by,
             now.isoformat()),
        )  # fmt: skip

    async def end_conversation(self, key: ConversationKey, now: datetime) -> bool:
        """Close the open conversation at `key`; False if there was none."""
        ended = await self._db.fetchall(
            "UPDATE conversations SET ended_at = ? WHERE platform = ? AND team_id = ?"
            " AND channel_id = ? AND thread_id = ? AND ended_at IS NULL RETURNING id",
            (now.isoformat(), *_key_params(key)),
        )
        return bool(ended)

    async def add_message(self, conversation_id: int, message: NewMessage) -> StoredMessage:
        """Append one complete message (with its usage, for a model reply): one atomic statement."""
        usage = message.usage
        [(new_id,)] = await self._db.fetchall(
            "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, author_id,"
            " author_name, platform_message_id, model, prompt_tokens, completion_tokens, created_at)"
            " VALUES (?1, ?2, ?3, ?4, COALESCE((SELECT tokens_before + tokens FROM messages"
            "   WHERE conversation_id = ?1 ORDER BY tokens_before DESC, id DESC LIMIT 1), 0),"
            " ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
            (
                conversation_id,
                message.role,
                message.content,
                message.tokens,
                message.author_id,
                message.author_name,
                message.platform_message_id,
                usage.model if usage else None,
                usage.prompt_tokens if usage else None,
                usage.completion_tokens if usage else None,
                message.created_at.isoformat(),
            ),
        )
        return StoredMessage(
            id=new_id,
            conversation_id=conversation_id,
            role=message.role,
            content=message.content,
            tokens=message.tokens,
            created_at=message.created_at,
            author_id=message.author_id,
            author_name=message.author_name,
            usage=usage,
        )

    async def window(self, conversation_id: int, budget_tokens: int) -> list[WindowMessage]:
        """The newest messages that fit `budget_tokens`, oldest first: one indexed range scan."""
        if budget_tokens <= 0:
            return []
        rows = await self._db.fetchall(
            "SELECT role, content, tokens, id, tokens_before FROM messages WHERE conversation_id = ?1"
            " AND tokens_before >= ("
            "   SELECT tokens_before + tokens FROM messages WHERE conversation_id = ?1"
            "   ORDER BY tokens_before DESC, id DESC LIMIT 1) - ?2"
            " ORDER BY tokens_before, id",
            (conversation_id, budget_tokens),
        )
        return list(map(WindowMessage._make, rows))

    async def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The whole conversation, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY tokens_before, id",
            (conversation_id,),
        )
        return [_message(row) for row in rows]

    async def claim_delivery(self, platform: str, delivery_id: str, now: datetime) -> bool:
        """True the first time (platform, delivery_id) is seen: one primary-key insert."""
        rows = await self._db.fetchall(
            "INSERT INTO deliveries (platform, delivery_id, claimed_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (platform, delivery_id, now.isoformat()),
        )
        return bool(rows)

    async def forget_deliveries(self, before: datetime) -> int:
        """Drop claims older than `before`."""
        rows = await self._db.fetchall("DELETE FROM deliveries WHERE claimed_at < ? RETURNING 1", (before.isoformat(),))
        return len(rows)

    async def forget_user(self, team_id: str, user_id: str, pseudonym: str) -> dict[str, int]:
        """Delete a user's messages (and the replies to them), prompt runs and ratings in a team;
        replace their id by `pseudonym` where the team's records must stay (ledger costs, authorship)."""
        counts: dict[str, int] = {}
        async with self._db.raw_transaction() as db:
            mine = (
                "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE c.team_id = ?1 AND m.role = 'user' AND m.author_id = ?2"
            )
            replies = (
                "SELECT (SELECT min(r.id) FROM messages r WHERE r.conversation_id = m.conversation_id"
                " AND r.id > m.id AND r.role = 'assistant') FROM messages m WHERE m.id IN (" + mine + ")"
            )
            rows = await db.execute_fetchall(
                f"DELETE FROM messages WHERE id IN ({mine}) OR id IN ({replies}) RETURNING role", (team_id, user_id)
            )
            counts["messages"] = sum(1 for (role,) in rows if role == "user")
            counts["replies"] = sum(1 for (role,) in rows if role == "assistant")
            counts["ratings"] = len(
                list(await db.execute_fetchall(
                    "DELETE FROM prompt_ratings WHERE user_id = ?2 AND run_id IN"
                    " (SELECT id FROM prompt_runs WHERE team_id = ?1) RETURNING 1", (team_id, user_id),
                ))
            )  # fmt: skip
            runs = "SELECT id FROM prompt_runs WHERE team_id = ?1 AND user_id = ?2"
            await db.execute(f"DELETE FROM prompt_ratings WHERE run_id IN ({runs})", (team_id, user_id))
            counts["prompt runs"] = len(
                list(
                    await db.execute_fetchall(
                        f"DELETE FROM prompt_runs WHERE id IN ({runs}) RETURNING 1", (team_id, user_id)
                    )
                )
            )
            pseudonymized = 0
            for sql in (
                "UPDATE usage_ledger SET user_id = ?3 WHERE team_id = ?1 AND user_id = ?2",
                "UPDATE usage_totals SET subject = ?3 WHERE team_id = ?1 AND scope = 'user' AND subject = ?2",
                "UPDATE prompts SET created_by = ?3 WHERE team_id = ?1 AND created_by = ?2",
                "UPDATE prompt_versions SET author_id = ?3 WHERE author_id = ?2"
                " AND prompt_id IN (SELECT id FROM prompts WHERE team_id = ?1)",
                "UPDATE quota_changes SET changed_by = ?3 WHERE team_id = ?1 AND changed_by = ?2",
            ):
                cursor = await db.execute(sql, (team_id, user_id, pseudonym))
                pseudonymized += cursor.rowcount
            counts["records pseudonymized"] = pseudonymized
        return counts


def _conversation(key: ConversationKey, row: Any) -> Conversation:
    return Conversation(
        id=row[0], key=key, created_at=datetime.fromisoformat(row[1]), system_prompt=row[2], model=row[3]
    )


def _key_params(key: ConversationKey) -> tuple[str, str, str, str]:
    return (key.platform, key.team_id, key.channel_id, key.thread_id)


def _message(row: Any) -> StoredMessage:
    usage = ModelUsage(row[8], row[9], row[10]) if row[8] is not None else None
    return StoredMessage(
        id=row[0],
        conversation_id=row[1],
        role=row[2],
        content=row[3],
        tokens=row[4],
        created_at=datetime.fromisoformat(row[5]),
        author_id=row[6],
        author_name=row[7],
        usage=usage,
    )
