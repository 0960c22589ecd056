"""Per-conversation locks: one turn at a time in a conversation, others free, nothing left behind."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat.locks import KeyedLocks


async def test_one_key_is_held_by_one_block_at_a_time_while_other_keys_run_freely() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    first_in = asyncio.Event()

    async def turn(key: str, name: str, wait: asyncio.Event | None = None) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            if wait is None:
                first_in.set()
                await asyncio.sleep(0.01)
            order.append(f"{name} out")

    first = asyncio.create_task(turn("a", "first"))
    await first_in.wait()
    second = asyncio.create_task(turn("a", "second", asyncio.Event()))
    other = asyncio.create_task(turn("b", "other", asyncio.Event()))
    await asyncio.gather(first, second, other)
    assert order.index("other out") < order.index("first out")  # another key did not wait
    assert order.index("first out") < order.index("second in")  # the same key did
    assert len(locks) == 0  # nobody holds or waits: nothing kept


async def test_a_block_that_fails_or_a_waiter_cancelled_leaves_nothing_held() -> None:
    locks = KeyedLocks()
    with pytest.raises(ValueError):
        async with locks.hold("a"):
            raise ValueError("the turn failed")
    assert len(locks) == 0

    held, waiting = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with locks.hold("a"):
            held.set()
            await waiting.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    waiter = asyncio.create_task(locks.hold("a").__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    waiting.set()
    await task
    assert len(locks) == 0
    async with locks.hold("a"):  # and the key is free again
        assert len(locks) == 1
