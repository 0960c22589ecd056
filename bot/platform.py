"""The platform seam: what each platform (Discord, Slack, the console, …) gives the engine.

A platform is one folder in adapters/ and one line in the composition root's list (bot/app.py). It
provides a `PlatformAdapter` (its name, whether the settings turn it on, serving the engine, how a
person becomes an admin there, /help's first line, its teams' names, posting as the bot from an operator's
command) and, with each message, a
`Responder` (bot/responder.py: answers, private ones where the platform has them) and a `Directory`
(bot/directory.py: who may see which channel, links, the history of a channel or thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from bot.chat.engine import Engine
    from bot.directory import ChannelAccess
    from bot.settings import Settings

DEFAULT_HELP_INTRO = "Mention me (or DM me) to chat; the thread is the conversation. Commands:"


class PlatformAdapter(Protocol):
    """One platform, as the composition root starts it and the commands describe it."""

    @property
    def name(self) -> str:
        """The platform's name in messages, storage and settings ("discord")."""

    @property
    def becoming_admin(self) -> str:
        """How a person becomes an admin there: said whenever an admin-only action is refused."""

    @property
    def help_intro(self) -> str:
        """/help's first line there."""

    def configured(self, settings: Settings) -> bool:
        """Whether the settings turn this platform on (its tokens are set)."""

    async def serve(self, engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
        """Connect, hand every message to `engine`, until `stop` is set."""

    async def team_names(self, settings: Settings) -> dict[str, str]:
        """{team id: name}, asked of the platform (may raise when it cannot answer)."""

    def operator_access(
        self, engine: Engine, settings: Settings, out: TextIO
    ) -> AbstractAsyncContextManager[ChannelAccess | None]:
        """The bot's own view and posting there for an operator's command (`python -m bot digests run`), with
        no event connection: for the block, None when the settings give it none. Entering may connect (and
        raise ConfigError or PlatformUnreachable, naming the platform); `out` is the command's output."""


class Platforms:
    """The list of platforms, and what the engine asks of it by a message's platform name.

    `fallback` (the console) runs when the settings configure no other.
    """

    def __init__(self, adapters: Iterable[PlatformAdapter], fallback: PlatformAdapter) -> None:
        self._all = {p.name: p for p in (*adapters, fallback)}
        self.fallback = fallback

    def __iter__(self) -> Iterator[PlatformAdapter]:
        return iter(self._all.values())

    def names(self) -> tuple[str, ...]:
        """Every platform's name."""
        return tuple(self._all)

    def others(self) -> list[PlatformAdapter]:
        """The platforms the settings may turn on: all but the fallback."""
        return [p for p in self if p is not self.fallback]

    def get(self, name: str) -> PlatformAdapter | None:
        """The platform called `name`, if there is one."""
        return self._all.get(name)

    def configured(self, settings: Settings) -> list[PlatformAdapter]:
        """The platforms the settings turn on (the fallback is not one of them)."""
        return [p for p in self.others() if p.configured(settings)]

    def operated(self, settings: Settings) -> list[PlatformAdapter]:
        """What an operator's command reaches (teams' names, digests): the fallback and the configured ones."""
        return [self.fallback, *self.configured(settings)]

    def becoming_admin(self, name: str) -> str:
        """How one becomes an admin on platform `name` ("" for an unknown one)."""
        platform = self.get(name)
        return platform.becoming_admin if platform is not None else ""

    def help_intro(self, name: str) -> str:
        """/help's first line on platform `name`."""
        platform = self.get(name)
        return platform.help_intro if platform is not None else DEFAULT_HELP_INTRO
