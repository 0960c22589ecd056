"""A clock for tests: engines and budgets take a clock, and tests move it by hand."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class Clock:
    """A clock the test moves by hand. Its `sleep` returns when the clock has been moved far enough."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
        due = [(at, f) for at, f in self._sleepers if at <= self.now]
        self._sleepers = [(at, f) for at, f in self._sleepers if at > self.now]
        for _, waiter in due:
            if not waiter.done():
                waiter.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has moved `seconds` ahead (real time does not count)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + timedelta(seconds=seconds), waiter))
        await waiter
