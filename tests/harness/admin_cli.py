"""Running the operator's command line (`python -m bot …`) in-process, as tests of the CLI and the dashboard do."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging

from bot.cli import main


async def run_cli(*argv: str) -> tuple[int, str, str]:
    """The command's exit code, output and errors. It configures logging as a process would (the root logger's
    handlers and level): that is put back afterwards, so later tests' log capture is not changed by it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            # main() runs its own event loop: give it a thread of its own, as a separate process would.
            code = await asyncio.to_thread(main, list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return code, out.getvalue(), err.getvalue()
