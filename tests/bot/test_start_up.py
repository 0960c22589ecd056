"""Start-up: what the bot made while starting is frozen out of the cyclic collector's full passes."""

from __future__ import annotations

import gc
import io
from pathlib import Path
from typing import Any

from bot.app import ConsoleIdentity, run_console


async def test_the_console_freezes_what_start_up_made_before_it_reads_a_line(
    make_settings: Any, tmp_path: Path
) -> None:
    gc.unfreeze()
    out = io.StringIO()
    try:
        code = await run_console(make_settings(), ConsoleIdentity(), stdin=io.StringIO("hello\n"), stdout=out,
                                 files_dir=tmp_path)  # fmt: skip
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()  # the rest of the test run is collected as usual
    assert code == 0 and "echo: hello" in out.getvalue()
    assert frozen > 1_000  # the modules, classes and engine start-up made
