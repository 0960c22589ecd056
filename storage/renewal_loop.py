"""One task that keeps a process's holds alive (reservations, leases), rather than a task per hold."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class RenewalLoop:
    """Calls `renew` every `every` seconds while `held()` says something is held.

    `start()` when a hold is taken: the loop runs until a round finds nothing held, then ends by itself (with no
    await between that test and its end, so a hold taken meanwhile starts a new loop). `renew` handles its own
    failures (a failing round is logged and retried at the next). `close()` stops it, at shutdown.
    """

    def __init__(
        self,
        name: str,
        every: float,
        held: Callable[[], bool],
        renew: Callable[[], Awaitable[None]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._name = name
        self._every = every
        self._held = held
        self._renew = renew
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Make sure the loop runs."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        try:
            while True:
                await self._sleep(self._every)
                if not self._held():
                    return
                await self._renew()
        finally:
            self._task = None

    async def close(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
