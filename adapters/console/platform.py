"""The console as a platform: the fallback when the settings turn no other on."""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import TextIO

from adapters.console.adapter import TEAM_ID, ConsoleAdapter, ConsoleChannels, ConsoleIdentity
from bot.chat.engine import Engine
from bot.logs import log_file
from bot.settings import Settings

TEAM_NAME = "this machine's console"


class ConsolePlatform:
    """A person (or a pipe) at this terminal, as `identity`."""

    name = "console"
    becoming_admin = "Start the console with --admin to speak as an admin (make run ARGS=--admin)."
    help_intro = "Type a message to chat; this channel is the conversation (/reset starts a fresh one). Commands:"

    def __init__(
        self,
        identity: ConsoleIdentity | None = None,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        files_dir: Path = Path("console-files"),
    ) -> None:
        self.identity = identity or ConsoleIdentity()
        self._stdin = stdin
        self._stdout = stdout
        self._files_dir = files_dir

    def configured(self, settings: Settings) -> bool:
        """Never by settings: it is what runs when no platform is configured."""
        return False

    def adapter(self, engine: Engine) -> ConsoleAdapter:
        """The console adapter on this terminal (or the streams given)."""
        return ConsoleAdapter(
            engine,
            self.identity,
            stdin=self._stdin or sys.stdin,
            stdout=self._stdout or sys.stdout,
            files_dir=self._files_dir,
            log_file=log_file(),
        )

    async def serve(self, engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
        """Handle lines until EOF or `stop`."""
        await self.adapter(engine).run(stop, settings.shutdown_grace_seconds)

    async def team_names(self, settings: Settings) -> dict[str, str]:
        """The console's one team."""
        return {TEAM_ID: TEAM_NAME}

    def operator_access(
        self, engine: Engine, settings: Settings, out: TextIO
    ) -> AbstractAsyncContextManager[ConsoleChannels]:
        """The console's stored channels; a digest is printed on the command's output."""
        return nullcontext(ConsoleChannels(engine, out.write))
