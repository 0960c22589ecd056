"""The PostgreSQL pool of a process that serves turns keeps its connections open from start, each warmed with a
turn's statements (rolled back); a one-off command's opens them as it needs them. And what a statement sets for its
own transaction never reaches a pooled session."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot.billing.budget import Budget
from bot.settings import load_settings
from storage import Conversation, ConversationKey, NewMessage, Store, WindowMessage, open_store
from storage.ledger_records import Charge, InFlightLease, ReservationRequest, Settlement, Units
from storage.turn_records import EagerQuestion, Question, TurnOpening
from tests.harness.pg_wire import wire_to
from tests.harness.store_contract import NOW
from tests.harness.stores import fresh_database


async def connections_to(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        name = urlsplit(url).path.lstrip("/")
        count = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name)
        return int(count) - 1  # not this one
    finally:
        await conn.close()


async def test_a_serving_store_opens_its_pool_at_start_and_a_one_off_command_one_connection(tmp_path: Path) -> None:
    async with fresh_database("postgres", tmp_path) as url:
        serving = await open_store(url, keep_connections=True)
        try:
            assert await connections_to(url) == 10
            assert await serving.has_open_conversation(ConversationKey("slack", "T1", "C1", "")) is False
        finally:
            await serving.close()
        assert await connections_to(url) == 0
        one_off = await open_store(url)
        try:
            assert await connections_to(url) == 1
        finally:
            await one_off.close()


async def test_a_claim_and_a_lease_commit_without_waiting_for_the_disk_and_leave_every_session_durable(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    async with fresh_database("postgres", tmp_path) as url:
        store = await open_store(url, keep_connections=True)
        try:
            key = ConversationKey("slack", "T1", "C1", "")
            claims = await asyncio.gather(*(
                store.ledger.claim_in_flight("slack", "T1", f"u{i}", "p:1", now, now + timedelta(minutes=1), 2)
                for i in range(20)
            ))  # fmt: skip
            assert all(c is not None for c in claims)
            async with store.turn_lock(key) as lease:
                assert lease is not None
            # Each statement turned synchronous_commit off for its own transaction only: every pooled connection
            # still waits for the disk at commit, as reservations and messages must.
            pool = store._db.pool  # type: ignore[attr-defined]
            held = [await pool.acquire() for _ in range(pool.get_max_size())]
            try:
                assert {await c.fetchval("SHOW synchronous_commit") for c in held} == {"on"}
            finally:
                for c in held:
                    await pool.release(c)
        finally:
            await store.close()


async def rows_in(url: str, *tables: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}")) for table in tables}
    finally:
        await conn.close()


TURN_TABLES = ("conversations", "messages", "usage_ledger", "usage_totals", "user_in_flight", "turn_leases")


async def test_a_serving_store_warms_every_connection_at_start_and_leaves_nothing_behind(tmp_path: Path) -> None:
    async with fresh_database("postgres", tmp_path) as url, wire_to(urlsplit(url).port or 5432) as wire:
        store = await open_store(f"{wire.url(url)}?sslmode=disable", keep_connections=True)
        try:
            assert await rows_in(url, *TURN_TABLES) == dict.fromkeys(TURN_TABLES, 0)
            settings = load_settings(env_file=None, database_url=url, quota_user_daily_usd="1")
            budget = Budget(store.ledger, settings, lambda: NOW)
            turns = [ask(store, budget, i) for i in range(10)]  # at once: every connection takes a part
            async with wire.counting():
                await asyncio.gather(*turns)
            # The turns' statements were prepared on every connection before: the turns prepared none.
            assert wire.writes > 0 and wire.parses == 0, wire.statements
        finally:
            await store.close()
        counts = await rows_in(url, *TURN_TABLES)
        assert counts["conversations"] == 10 and counts["messages"] == 20 and counts["usage_ledger"] == 10
        assert counts["user_in_flight"] == 0 and counts["turn_leases"] == 0


async def ask(store: Store, budget: Budget, i: int) -> None:
    """A first turn's statements, as the engine runs them: claim, lease, open (the question with the read), reserve,
    then the reply with its settlement and both releases."""
    key = ConversationKey("slack", "T1", f"C{i}", "")
    claimed = await store.ledger.claim_in_flight("slack", "T1", f"u{i}", "p:1", NOW, NOW + timedelta(minutes=1), 2)
    assert claimed is not None
    async with store.turn_lock(key) as lease:
        question = NewMessage("user", f"q{i}", 5, NOW, author_id=f"u{i}")
        charge = Charge("slack", "T1", f"u{i}", f"C{i}", "chat", "gpt-4.1-mini")

        def reservation(conversation: Conversation, window: list[WindowMessage]) -> ReservationRequest:
            return budget.request(charge, Units(input_tokens=5), 100)

        opening = TurnOpening(key, NOW, lambda _: Question(question, 1_000), reservation,
                              eager=EagerQuestion(question, 1_000, True, 1_000))  # fmt: skip
        opened = await store.open_turn(opening)
        assert opened.reserved is not None
        reply = NewMessage("assistant", f"a{i}", 3, NOW, reply_to=opened.question.id)
        settlement = Settlement(opened.reserved, Units(input_tokens=5, output_tokens=3), 60, NOW)
        running = InFlightLease(claimed)
        _, settled = await store.add_reply(opened.conversation.id, reply, settlement, lease, running)
    assert settled and running.released


async def test_a_warm_up_that_fails_is_logged_and_the_store_opens_all_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with fresh_database("postgres", tmp_path) as url:
        await (await open_store(url)).close()  # migrated
        blocker = await asyncpg.connect(url)
        try:
            locking = blocker.transaction()
            await locking.start()
            await blocker.execute("LOCK TABLE turn_leases IN ACCESS EXCLUSIVE MODE")
            with caplog.at_level(logging.WARNING, logger="storage.postgres.store"):
                store = await open_store(url, busy_timeout_ms=200, keep_connections=True)
            await locking.rollback()
        finally:
            await blocker.close()
        try:
            assert "could not warm the database connections" in caplog.text
            assert await store.has_open_conversation(ConversationKey("slack", "T1", "C1", "")) is False
        finally:
            await store.close()
        assert await rows_in(url, *TURN_TABLES) == dict.fromkeys(TURN_TABLES, 0)
