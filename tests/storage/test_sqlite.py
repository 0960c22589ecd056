"""The SQLite store: migrations, atomic messages, the O(window) history window."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import ConversationKey, ModelUsage, NewMessage, StoreUnavailable, open_store
from storage.postgres.migrations import MIGRATIONS as POSTGRES_MIGRATIONS
from storage.sqlite import SQLiteStore
from storage.sqlite.migrations import MIGRATIONS

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEY = ConversationKey("console", "local", "c1", "")


def user(text: str, tokens: int) -> NewMessage:
    return NewMessage(role="user", content=text, tokens=tokens, created_at=NOW, author_id="u1")


async def test_migrations_run_on_a_blank_file_and_reopen_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "db.sqlite3"
    store = await SQLiteStore.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        applied = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
        assert applied == [m.name for m in MIGRATIONS]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store = await SQLiteStore.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database " * 100)
    with pytest.raises(StoreUnavailable, match=r"cannot use SQLite database .*notes\.txt"):
        await open_store(f"sqlite:///{path}")
    assert path.read_text().startswith("this is not a database")


async def test_relative_sqlite_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    store = await open_store("sqlite:///data/bot.sqlite3")  # conftest chdirs into tmp_path
    await store.close()
    assert (tmp_path / "data" / "bot.sqlite3").exists()


async def test_conversation_is_reused_until_ended(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "db.sqlite3")
    first = await store.active_conversation(KEY, NOW)
    assert (await store.active_conversation(KEY, NOW)).id == first.id
    assert await store.end_conversation(KEY, NOW)
    assert not await store.end_conversation(KEY, NOW)
    second = await store.active_conversation(KEY, NOW)
    assert second.id != first.id
    other_thread = await store.active_conversation(ConversationKey("console", "local", "c1", "t9"), NOW)
    assert other_thread.id not in (first.id, second.id)
    await store.close()


async def test_window_keeps_the_newest_messages_that_fit(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "db.sqlite3")
    conv = await store.active_conversation(KEY, NOW)
    for i, tokens in enumerate([10, 20, 30, 40]):
        await store.add_message(conv.id, user(f"m{i}", tokens))
    assert [m.content for m in await store.window(conv.id, 70)] == ["m2", "m3"]
    assert [m.content for m in await store.window(conv.id, 69)] == ["m3"]
    assert [m.content for m in await store.window(conv.id, 100)] == ["m0", "m1", "m2", "m3"]
    assert [m.content for m in await store.window(conv.id, 1000)] == ["m0", "m1", "m2", "m3"]
    assert await store.window(conv.id, 39) == []
    assert await store.window(conv.id, 0) == []
    await store.close()


async def test_window_of_an_empty_conversation_is_empty(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "db.sqlite3")
    conv = await store.active_conversation(KEY, NOW)
    assert await store.window(conv.id, 1000) == []
    await store.close()


async def test_window_query_uses_the_index_not_a_scan(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = await SQLiteStore.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        plan = " ".join(
            row[3]
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE conversation_id = ?1 AND tokens_before >= ("
                " SELECT tokens_before + tokens FROM messages WHERE conversation_id = ?1"
                " ORDER BY tokens_before DESC, id DESC LIMIT 1) - ?2 ORDER BY tokens_before, id",
                (1, 100),
            )
        )
    assert "messages_window" in plan and "SCAN messages" not in plan


async def test_assistant_message_keeps_its_usage(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "db.sqlite3")
    conv = await store.active_conversation(KEY, NOW)
    usage = ModelUsage("gpt-4.1-mini", 120, 33)
    await store.add_message(conv.id, NewMessage("assistant", "hi", 5, NOW, usage=usage))
    [stored] = await store.messages(conv.id)
    assert stored.usage == usage and stored.role == "assistant"
    await store.close()


async def test_a_rejected_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "db.sqlite3")
    conv = await store.active_conversation(KEY, NOW)
    await store.add_message(conv.id, user("kept", 5))
    with pytest.raises(sqlite3.IntegrityError):
        await store.add_message(conv.id, user("negative", -1))
    with pytest.raises(sqlite3.IntegrityError):
        await store.add_message(conv.id + 999, user("orphan", 5))
    assert [m.content for m in await store.messages(conv.id)] == ["kept"]
    # The connection is usable after the failed transactions.
    await store.add_message(conv.id, user("after", 5))
    assert [m.content for m in await store.messages(conv.id)] == ["kept", "after"]
    await store.close()


async def test_a_delivery_is_claimed_once_even_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    first, second = await SQLiteStore.open(path), await SQLiteStore.open(path)
    claims = await asyncio.gather(*(s.claim_delivery("slack", "Ev123", NOW) for s in (first, second) * 5))
    assert sorted(claims) == [False] * 9 + [True]
    assert await first.claim_delivery("discord", "Ev123", NOW)  # per platform
    assert await second.forget_deliveries(NOW + timedelta(seconds=1)) == 2
    assert await first.claim_delivery("slack", "Ev123", NOW)
    await first.close()
    await second.close()


@pytest.mark.parametrize("applied", range(2, len(MIGRATIONS)))
async def test_every_older_schema_is_migrated_forward_keeping_its_data(tmp_path: Path, applied: int) -> None:
    """Open a database made by the first `applied` migrations only: a release older than this one."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    old = MIGRATIONS[:applied]
    import aiosqlite

    async with aiosqlite.connect(path, isolation_level=None) as db:
        for migration in old:
            for statement in migration.statements:
                await db.execute(statement)
            await db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.name, NOW.isoformat()))
        await db.execute("INSERT INTO conversations (platform, team_id, channel_id, created_at) VALUES "
                         "('console', 'local', 'c1', ?)", (NOW.isoformat(),))  # fmt: skip
        await db.execute("INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, created_at)"
                         " VALUES (1, 'user', 'from the old days', 7, 0, ?)", (NOW.isoformat(),))  # fmt: skip
    store = await SQLiteStore.open(path)
    conv = await store.active_conversation(KEY, NOW)
    assert [m.content for m in await store.messages(conv.id)] == ["from the old days"]
    assert await store.ledger.totals("local", "u1", "2026-11-24", "2026-11") is not None
    await store.close()
    with sqlite3.connect(path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [m.name for m in MIGRATIONS]


def test_both_databases_have_the_same_migrations_in_the_same_order() -> None:
    """A migration added to one list only would leave the other database's schema behind."""
    assert [m.name for m in MIGRATIONS] == [m.name for m in POSTGRES_MIGRATIONS]
