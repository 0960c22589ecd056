"""The event loop every command of `python -m bot` runs on: uvloop where it is installed (it is a dependency on
Linux and macOS), else asyncio's own.

uvloop runs the loop, its callbacks and its socket transports in C (libuv): each round trip to PostgreSQL, each
result aiosqlite's thread hands back and each HTTP request costs the process less CPU than asyncio's loop in
Python (benchmarks/README.md has the figures). The tests run on the same loop (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None where uvloop is not installed (asyncio's default loop then)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_factory` names."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
