"""`python -m bot` runs its commands on uvloop where it is installed (a dependency on Linux and macOS)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot.event_loop import loop_factory, run


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop has no Windows build: asyncio's loop there")
def test_commands_run_on_uvloop_and_return_what_their_coroutine_returns() -> None:
    assert loop_factory() is not None
    assert run(_loop_module()).startswith("uvloop")


async def test_the_tests_run_on_the_loop_the_bot_runs_on() -> None:
    factory = loop_factory()
    if factory is None:
        expected = "asyncio"
    else:
        loop = factory()
        expected = type(loop).__module__.split(".")[0]
        loop.close()
    assert (await _loop_module()).split(".")[0] == expected
