"""PostgreSQL turn leases (a thread's turns across processes): one loop renews every lease a process holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage import ConversationKey
from tests.harness.stores import fresh_database

KEYS = (ConversationKey("slack", "T1", "C1", "171.1"), ConversationKey("slack", "T1", "C2", "7"))


def renewing() -> bool:
    return any(task.get_name() == "turn leases" for task in asyncio.all_tasks())


async def test_leases_held_past_their_lapse_are_renewed_together_and_free_once_their_turns_end(
    tmp_path: Path,
) -> None:
    from storage.postgres import PostgresStore

    async with fresh_database("postgres", tmp_path) as url:
        holder = await PostgresStore.open(url, lease_seconds=0.6)  # renewed every 0.2 s
        other = await PostgresStore.open(url, lease_seconds=0.6)
        try:
            async with holder.turn_lock(KEYS[0]), holder.turn_lock(KEYS[1]):
                await asyncio.sleep(1.5)  # well past the lapse of a lease nobody renewed
                for key in KEYS:  # both still held: another process waits
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.5), other.turn_lock(key):
                            pass
            async with asyncio.timeout(2), other.turn_lock(KEYS[0]), other.turn_lock(KEYS[1]):
                pass  # released with their turns
            await asyncio.sleep(0.5)
            assert not renewing()  # nothing held: the loop ended by itself
            async with holder.turn_lock(KEYS[0]):
                assert renewing()  # and a new lease starts it again
        finally:
            await holder.close()
            await other.close()
        assert not renewing()
