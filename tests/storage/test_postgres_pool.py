"""The PostgreSQL pool of a process that serves turns keeps its connections open from start; a one-off command's
opens them as it needs them. And what a statement sets for its own transaction never reaches a pooled session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from storage import ConversationKey, open_store
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
