"""SQLite's group commit: scripts queued together share one transaction, and each caller keeps its promises."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.billing.budget import Budget
from bot.settings import load_settings
from storage import ConversationKey, NewMessage, StoredMessage, StoreFailed
from storage.ledger_records import Charge, Units
from storage.sql.connection import Script
from storage.sqlite import SQLiteStore
from storage.sqlite.database import SQLiteDatabase
from storage.sqlite.group_commit import GROUP_MOST
from storage.turn_records import Question, TurnOpening

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CHARGE = Charge("console", "local", "u1", "c1", "chat", "m")


def said(text: str) -> NewMessage:
    return NewMessage(role="user", content=text, tokens=3, created_at=NOW, author_id="u1")


def key(i: int) -> ConversationKey:
    return ConversationKey("console", "local", f"c{i}", "")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(tmp_path / "group.sqlite3", busy_timeout_ms=300)
    try:
        yield opened
    finally:
        await opened.close()


def database(store: SQLiteStore) -> SQLiteDatabase:
    return store._sqlite


async def queued_together(store: SQLiteStore, *work: Awaitable[Any]) -> list[Any]:
    """Each outcome of `work` (an error as it was raised), started at once behind a script that runs first on its
    own (the first of a burst goes to the thread alone, as it always did): queued together, they run as one group."""
    first = store.window(1, 10)
    outcomes = await asyncio.gather(first, *work, return_exceptions=True)
    assert outcomes[0] == []
    return outcomes[1:]


def committed(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """What another connection (another process) reads: only what was committed."""
    with sqlite3.connect(path) as other:
        return other.execute(sql, args).fetchall()


async def traced(store: SQLiteStore, work: Callable[[], Awaitable[Any]]) -> tuple[Any, list[str]]:
    """What `work` returns, and the statements SQLite ran for it."""
    statements: list[str] = []
    await store.trace(statements.append)
    try:
        return await work(), statements
    finally:
        await store.trace(None)


async def test_scripts_queued_together_share_one_commit_and_each_caller_resumes_with_its_writes_committed(
    store: SQLiteStore, tmp_path: Path
) -> None:
    conversations = [await store.active_conversation(key(i), NOW) for i in range(40)]
    seen_by_another_process: list[bool] = []

    async def add(i: int) -> StoredMessage:
        stored = await store.add_message(conversations[i].id, said(f"question {i}"))
        rows = committed(tmp_path / "group.sqlite3", "SELECT content FROM messages WHERE id = ?", stored.id)
        seen_by_another_process.append(rows == [(f"question {i}",)])
        return stored

    stored, statements = await traced(store, lambda: asyncio.gather(*(add(i) for i in range(40))))
    assert seen_by_another_process == [True] * 40
    assert [m.content for m in stored] == [f"question {i}" for i in range(40)]
    inserts = [s for s in statements if s.startswith("INSERT INTO messages")]
    commits = [s for s in statements if s == "COMMIT"]
    assert len(inserts) == 40
    assert 0 < len(commits) <= 40 // 2  # queued together: a commit for up to GROUP_MOST of them
    assert statements.count("BEGIN IMMEDIATE") == len(commits)
    assert all(len(m) == 1 for m in [await store.messages(c.id) for c in conversations])


async def test_a_script_alone_runs_as_before_each_write_its_own_transaction(store: SQLiteStore) -> None:
    conversation = await store.active_conversation(key(1), NOW)
    _, statements = await traced(store, lambda: store.add_message(conversation.id, said("alone")))
    assert [s.split()[0] for s in statements if not s.startswith("--")] == ["INSERT"]
    # The first of several at once too: it goes to the thread at once, on its own; the others queue behind it.
    others = [await store.active_conversation(key(i), NOW) for i in range(2, 5)]
    _, statements = await traced(
        store, lambda: asyncio.gather(*(store.add_message(c.id, said("at once")) for c in [conversation, *others]))
    )
    verbs = [s.split()[0] for s in statements if not s.startswith("--")]
    assert verbs == ["INSERT", "BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]


async def test_a_stream_of_scripts_does_not_hold_up_a_statement_queued_meanwhile(store: SQLiteStore) -> None:
    """Each group is a trip of its own, joining the back of the connection's queue as each script did: a statement
    queued while the scripts run waits for a group or two, not for all of them."""
    conversations = [await store.active_conversation(key(i), NOW) for i in range(8 * GROUP_MOST)]
    finished: list[str] = []

    async def add(i: int) -> None:
        await store.add_message(conversations[i].id, said(f"{i}"))
        finished.append("script")

    adding = [asyncio.create_task(add(i)) for i in range(len(conversations))]
    await asyncio.wait(adding, return_when=asyncio.FIRST_COMPLETED)  # the first group is done, the rest queued
    assert await store.has_open_conversation(key(0))
    finished.append("statement")
    await asyncio.gather(*adding)
    assert finished.index("statement") <= 2 * GROUP_MOST


async def test_a_script_that_fails_in_a_group_fails_alone_and_keeps_its_earlier_writes(
    store: SQLiteStore,
) -> None:
    """Its own error (a refused question) or a statement's (a constraint): the others commit; its writes
    before the failure stay, as when each of its statements was its own transaction."""
    conversations = [await store.active_conversation(key(i), NOW) for i in range(6)]

    def refuse(_: object) -> Question:
        raise ValueError("refused")

    def ask(i: int) -> Any:
        if i == 2:  # starts a new conversation, then refuses the question
            return store.open_turn(TurnOpening(key(99), NOW, refuse, lambda *_: None))
        if i == 4:  # a message for a conversation that does not exist: the foreign key refuses it
            return store.add_message(123_456, said("nowhere"))
        return store.add_message(conversations[i].id, said(f"kept {i}"))

    outcomes = await queued_together(store, *(ask(i) for i in range(6)))
    assert isinstance(outcomes[2], ValueError)
    assert isinstance(outcomes[4], sqlite3.IntegrityError)  # a constraint error stays a bug, as before
    for i in (0, 1, 3, 5):
        assert [m.content for m in await store.messages(conversations[i].id)] == [f"kept {i}"]
    started = await store.active_conversation(key(99), NOW)  # started before the refusal: kept, as alone
    assert started.id > conversations[-1].id and await store.messages(started.id) == []


async def test_a_batch_that_fails_in_a_group_is_undone_whole_and_the_others_commit(
    store: SQLiteStore, tmp_path: Path
) -> None:
    conversations = [await store.active_conversation(key(i), NOW) for i in range(4)]
    db = database(store)
    insert = "INSERT INTO deliveries (platform, delivery_id, claimed_at) VALUES ($1, $2, $3)"

    def batch(i: int) -> Any:
        statements = [(insert, ("slack", f"d{i}", "now")), (insert, ("slack", f"e{i}", "now"))]
        if i == 1:  # its second statement repeats a key: the whole batch goes, its first insert too
            statements[1] = (insert, ("slack", "d1", "now"))
        return db.batch(statements)

    outcomes = await queued_together(
        store, *(batch(i) for i in range(3)), store.add_message(conversations[3].id, said("beside"))
    )
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    assert outcomes[0] == outcomes[2] == [[], []]
    claimed = committed(tmp_path / "group.sqlite3", "SELECT delivery_id FROM deliveries ORDER BY delivery_id")
    assert claimed == [("d0",), ("d2",), ("e0",), ("e2",)]
    assert [m.content for m in await store.messages(conversations[3].id)] == ["beside"]


async def nearly_full(store: SQLiteStore) -> None:
    """Room left for a few small rows, not for a large one (SQLite then fails a write: disk full)."""
    db = database(store)
    await db.execute(f"PRAGMA max_page_count = {await db.fetchval('PRAGMA page_count') + 2}")


async def test_disk_full_on_one_write_that_sqlite_undoes_alone_fails_that_caller_only(store: SQLiteStore) -> None:
    conversations = [await store.active_conversation(key(i), NOW) for i in range(5)]
    await nearly_full(store)
    texts = ["small 0", "small 1", "x" * 200_000, "small 3", "small 4"]
    outcomes = await queued_together(
        store, *(store.add_message(c.id, said(t)) for c, t in zip(conversations, texts, strict=True))
    )
    assert [isinstance(o, StoreFailed) for o in outcomes] == [False, False, True, False, False]
    for conversation, text in zip(conversations, texts, strict=True):
        assert [m.content for m in await store.messages(conversation.id)] == ([] if text == texts[2] else [text])


async def test_when_sqlite_rolls_the_whole_group_back_no_caller_is_told_its_writes_were_made(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """Disk full on a write with no statement journal: SQLite rolls the whole transaction back. The callers before
    the failing one get an error (their writes went with it), the failing one its own; those after it run in a
    new transaction."""
    conversations = [await store.active_conversation(key(i), NOW) for i in range(7)]
    await nearly_full(store)

    def large_claim() -> Script[None]:
        yield ("INSERT INTO deliveries (platform, delivery_id, claimed_at) VALUES ($1, $2, $3)",
               ("slack", "x" * 200_000, "now"))  # fmt: skip

    def write(i: int) -> Any:
        return database(store).run(large_claim()) if i == 3 else store.add_message(conversations[i].id, said(f"{i}"))

    outcomes = await queued_together(store, *(write(i) for i in range(7)))
    assert [isinstance(o, StoreFailed) for o in outcomes] == [True] * 4 + [False] * 3
    for i, outcome in enumerate(outcomes):
        if i == 3:
            continue
        rows = committed(tmp_path / "group.sqlite3", "SELECT content FROM messages WHERE conversation_id = ?",
                         conversations[i].id)  # fmt: skip
        # Whoever was answered has its message stored; whoever got an error has nothing stored.
        assert rows == ([] if isinstance(outcome, BaseException) else [(f"{i}",)])
    assert committed(tmp_path / "group.sqlite3", "SELECT count(*) FROM deliveries") == [(0,)]
    await database(store).execute("PRAGMA max_page_count = 1073741823")
    assert (await store.add_message(conversations[0].id, said("again"))).content == "again"


async def test_when_the_groups_commit_fails_every_caller_in_it_gets_an_error_and_nothing_stays(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """A COMMIT that fails (here a foreign key checked at commit) rolls back the whole group."""
    conversations = [await store.active_conversation(key(i), NOW) for i in range(3)]
    db = database(store)

    def deferred_orphan() -> Script[None]:
        yield ("PRAGMA defer_foreign_keys = ON", ())  # in effect until the transaction ends: checked at COMMIT
        yield ("INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, created_at)"
               " VALUES (123456, 'user', 'orphan', 1, 0, 'now')", ())  # fmt: skip

    outcomes = await queued_together(
        store,
        store.add_message(conversations[0].id, said("first")),
        db.run(deferred_orphan()),
        store.add_message(conversations[1].id, said("third")),
    )
    assert all(isinstance(o, StoreFailed) for o in outcomes), outcomes
    assert committed(tmp_path / "group.sqlite3", "SELECT content FROM messages") == []
    assert (await store.add_message(conversations[2].id, said("after"))).content == "after"


async def test_a_group_that_cannot_take_the_write_lock_fails_each_caller_as_busy(
    store: SQLiteStore, tmp_path: Path
) -> None:
    conversations = [await store.active_conversation(key(i), NOW) for i in range(3)]
    other = sqlite3.connect(tmp_path / "group.sqlite3", isolation_level=None)  # another process, writing
    other.execute("BEGIN IMMEDIATE")
    try:
        outcomes = await queued_together(store, *(store.add_message(c.id, said("blocked")) for c in conversations))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert all(isinstance(o, StoreFailed) and o.busy for o in outcomes), outcomes
    assert [m.content for m in [await store.add_message(conversations[0].id, said("free"))]] == ["free"]


async def test_callers_cancelled_while_their_openings_wait_in_a_group_give_their_reservations_back(
    store: SQLiteStore,
) -> None:
    """Their scripts run on (the thread runs what it was given): each question stays stored, each reservation is
    released; the turns beside them keep theirs."""
    budget = Budget(store.ledger, load_settings(env_file=None), lambda: NOW)
    request = budget.request(CHARGE, Units(input_tokens=10), 500)

    def opening(i: int) -> TurnOpening:
        return TurnOpening(key(i), NOW, lambda _: Question(said(f"asked {i}"), 1_000), lambda *_: request)

    turns = [asyncio.create_task(store.open_turn(opening(i))) for i in range(2 * GROUP_MOST)]
    await asyncio.sleep(0)  # each has queued its script; the thread has not answered yet
    cancelled = turns[1::3]
    for turn in cancelled:
        turn.cancel()
    outcomes = await asyncio.gather(*turns, return_exceptions=True)
    assert all(isinstance(outcomes[i], asyncio.CancelledError) for i in range(1, len(turns), 3))
    kept = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(kept) == len(turns) - len(cancelled) and all(o.reserved is not None for o in kept)
    rows = await store.ledger.ledger_rows("local")
    assert sorted(state for *_, state in rows) == sorted(["reserved"] * len(kept) + ["released"] * len(cancelled))
    for i in range(len(turns)):
        conversation = await store.active_conversation(key(i), NOW)
        assert [m.content for m in await store.messages(conversation.id)] == [f"asked {i}"]


async def test_a_script_queued_after_the_connection_closed_fails_and_nobody_waits_forever(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "closed.sqlite3")
    conversation = await store.active_conversation(key(1), NOW)
    await store.close()
    with pytest.raises(ValueError, match="closed"):
        await asyncio.wait_for(store.add_message(conversation.id, said("late")), timeout=5)
