"""A console run whose reply streams slowly, for tests that stop it part-way."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.harness.console import REPO


async def console_streaming(env: dict[str, str], cwd: Path, lines: bytes) -> tuple[asyncio.subprocess.Process, bytes]:
    """A real `python -m bot console` process, fed `lines`, once its first reply has begun to stream."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO), **env}, cwd=cwd,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(lines)
    await proc.stdin.drain()
    return proc, await asyncio.wait_for(proc.stdout.readexactly(5), timeout=30)
