"""Privacy in storage, on SQLite and PostgreSQL: /forget removes exactly the asker's messages and the replies to
them; platform deletions and edits reach history and memory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.app import open_engine
from bot.chat.engine import Engine
from storage import ConversationKey, NewMessage, PlatformMessage, Store
from storage.memory_records import MessageVector, VectorScope
from tests.fakes.openai_server import FakeOpenAI, ServerError
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEY = ConversationKey("slack", "T1", "C1", "171.1")
ONES = np.ones(2, dtype="<f4").tobytes()  # a vector; its values do not matter here


def said(text: str, author: str, ts: str) -> NewMessage:
    return NewMessage("user", text, 5, NOW, author_id=author, author_name=author, platform_message_id=ts)


def reply(text: str, to: int) -> NewMessage:
    return NewMessage("assistant", text, 5, NOW, reply_to=to)


async def vectors(store: Store) -> list[int]:
    """Ids of every stored vector of the team."""
    page = await store.memory.scan(VectorScope("slack", "T1", "m"), 0, 1_000)
    return page.ids


async def contents(store: Store, conversation_id: int) -> list[str]:
    return [m.content for m in await store.messages(conversation_id)]


async def test_forget_removes_the_askers_messages_and_the_replies_to_them_only(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    alice_failed = await store.add_message(conv.id, said("alice: a question that got no answer", "alice", "1.1"))
    bob = await store.add_message(conv.id, said("bob: my question", "bob", "1.2"))
    bobs_answer = await store.add_message(conv.id, reply("the answer to bob", bob.id))
    alice = await store.add_message(conv.id, said("alice: another", "alice", "1.3"))
    await store.add_message(conv.id, reply("the answer to alice", alice.id))
    await store.memory.save_vectors("m", [MessageVector(m.id, m.content, ONES) for m in await store.messages(conv.id)])
    counts = await store.forget_user("T1", "alice", "forgotten-x")
    assert (counts["messages"], counts["replies"]) == (2, 1)
    assert await contents(store, conv.id) == ["bob: my question", "the answer to bob"]
    assert await vectors(store) == [bob.id, bobs_answer.id]
    assert alice_failed.id not in await vectors(store)


async def test_a_platform_deletion_removes_the_message_its_replies_and_vectors(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    secret = await store.add_message(conv.id, said("my prod password is hunter2", "ann", "1.1"))
    await store.add_message(conv.id, reply("noted: hunter2", secret.id))
    kept = await store.add_message(conv.id, said("something else", "ann", "1.2"))
    await store.memory.save_vectors("m", [MessageVector(m.id, m.content, ONES) for m in await store.messages(conv.id)])
    other_channel = PlatformMessage("slack", "T1", "C2", "1.1")
    assert await store.delete_platform_message(other_channel) == 0  # the same ts in another channel is not it
    assert await store.delete_platform_message(PlatformMessage("slack", "T1", "C1", "1.1")) == 2
    assert await contents(store, conv.id) == ["something else"]
    assert await vectors(store) == [kept.id]
    assert await store.delete_platform_message(PlatformMessage("slack", "T1", "C1", "")) == 0


async def test_an_edit_replaces_the_text_reembeds_it_and_keeps_the_window_exact(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    edited = await store.add_message(conv.id, said("my prod password is hunter2", "ann", "1.1"))
    after = await store.add_message(conv.id, reply("ok", edited.id))
    await store.memory.save_vectors("m", [MessageVector(edited.id, "my prod password is hunter2", ONES)])
    message_ref = PlatformMessage("slack", "T1", "C1", "1.1")
    assert await store.edit_platform_message(message_ref, "bob", "not bob's to edit", 3) == 0
    assert await store.edit_platform_message(message_ref, "ann", "my password is [redacted]", 40) == 1
    assert await contents(store, conv.id) == ["my password is [redacted]", "ok"]
    assert await vectors(store) == []  # the old text can no longer be found
    pending = await store.memory.claim_pending(10, NOW, NOW)
    assert [(p.message_id, p.content) for p in pending] == [
        (edited.id, "my password is [redacted]"), (after.id, "ok")
    ]  # fmt: skip
    window = await store.window(conv.id, 45)  # 40 + 5 tokens: both fit exactly, and no more than that
    assert [m.content for m in window] == ["my password is [redacted]", "ok"]
    assert [m.content for m in await store.window(conv.id, 44)] == ["ok"]


# --- through the engine ------------------------------------------------------------------------


async def say(engine: Engine, text: str, user: str) -> RecordingResponder:
    responder = RecordingResponder()
    msg = message(text, user=user, platform="slack", team="T1", channel="C1", thread="171.1")
    await engine.handle(msg, responder)
    return responder


async def test_forget_in_a_shared_thread_keeps_the_reply_to_someone_else(
    url: str, make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ServerError(500))  # Alice's question fails: it is kept, with no answer
    async with open_engine(make_settings(database_url=url, memory_enabled=False)) as engine:
        assert (await say(engine, "alice asks", "alice")).errors
        assert (await say(engine, "bob asks", "bob")).replies == ["echo: bob asks"]
        await say(engine, "/forget confirm", "alice")
        conv = await engine.store.active_conversation(KEY, NOW)
        assert await contents(engine.store, conv.id) == ["bob asks", "echo: bob asks"]


async def test_replies_stored_before_links_existed_are_linked_to_the_question_right_before_them(
    tmp_path: Path,
) -> None:
    import aiosqlite

    from storage.sqlite import SQLiteStore
    from storage.sqlite.migrations import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    old = [m for m in MIGRATIONS if m.name != "security_reply_links"]
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for migration in old:
            for statement in migration.statements:
                await db.execute(statement)
            await db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.name, NOW.isoformat()))
        await db.execute("INSERT INTO conversations (platform, team_id, channel_id, thread_id, created_at)"
                         " VALUES ('slack', 'T1', 'C1', '171.1', ?)", (NOW.isoformat(),))  # fmt: skip
        for role, author, content in [("user", "alice", "alice failed"), ("user", "bob", "bob asks"),
                                      ("assistant", "", "to bob"), ("user", "alice", "alice again"),
                                      ("assistant", "", "to alice")]:  # fmt: skip
            await db.execute(
                "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, author_id, created_at)"
                " VALUES (1, ?, ?, 1, 0, ?, ?)",
                (role, content, author, NOW.isoformat()),
            )
    store = await SQLiteStore.open(path)
    try:
        assert await store.forget_user("T1", "alice", "forgotten-x") == {
            "messages": 2, "replies": 1, "ratings": 0, "prompt runs": 0, "dashboard sign-ins": 0,
            "assistant threads": 0, "records pseudonymized": 0,
        }  # fmt: skip
        conv = await store.active_conversation(KEY, NOW)
        assert await contents(store, conv.id) == ["bob asks", "to bob"]
    finally:
        await store.close()


async def test_an_edit_while_the_old_text_is_being_embedded_keeps_no_vector_of_the_old_text(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    edited = await store.add_message(conv.id, said("my prod password is hunter2", "ann", "1.1"))
    [claimed] = await store.memory.claim_pending(10, NOW, NOW)  # the embedder holds the old text…
    assert claimed.content == "my prod password is hunter2"
    assert await store.edit_platform_message(PlatformMessage("slack", "T1", "C1", "1.1"), "ann", "[redacted]", 3) == 1
    # …and saves its vector after the edit
    await store.memory.save_vectors("m", [MessageVector(claimed.message_id, claimed.content, ONES)])
    assert await vectors(store) == []  # the old text cannot be found by its meaning
    assert [(p.message_id, p.content) for p in await store.memory.claim_pending(10, NOW, NOW)] == [
        (edited.id, "[redacted]")
    ]  # the new text still waits to be embedded
