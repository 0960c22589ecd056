"""Running the operator's command line (`python -m bot …`) in-process, as tests of the CLI and the dashboard do."""

from __future__ import annotations

import io

from bot.cli import main


async def run_cli(*argv: str) -> tuple[int, str, str]:
    import asyncio
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        # main() runs its own event loop: give it a thread of its own, as a separate process would.
        code = await asyncio.to_thread(main, list(argv))
    return code, out.getvalue(), err.getvalue()
