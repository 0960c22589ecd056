"""The PostgreSQL pool of a process that serves turns keeps its connections open from start; a one-off command's
opens them as it needs them."""

from __future__ import annotations

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
