"""The platform seam: what each platform (Discord, Slack, the console, …) gives the engine.

A platform is one folder in adapters/ and one line in the composition root's list (bot/app.py). It
provides a `PlatformAdapter` (its name, whether the settings turn it on, serving the engine, how a
person becomes an admin there, /help's first line, its teams' names) and, with each message, a
`Responder` (bot/responder.py: answers, private ones where the platform has them) and a `Directory`
(below: who may see which channel, links, the history of a channel or thread).

/search and catch-ups must never show a person a message from a channel they cannot read (a DM, a
private channel). The adapter answers with the platform's own rules; without an adapter's answer,
only the channel the question was asked in counts as visible.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.errors import NotSupported

if TYPE_CHECKING:
    from bot.chat.engine import Engine
    from bot.settings import Settings

DEFAULT_HELP_INTRO = "Mention me (or DM me) to chat; the thread is the conversation. Commands:"


@dataclass(frozen=True)
class HistoryMessage:
    """One message of a channel's or thread's history as the platform keeps it (the bot may never have seen it)."""

    author_id: str
    author_name: str
    text: str
    created_at: datetime
    message_id: str
    thread_id: str = ""  # the thread it belongs to ("" in a channel's main timeline)
    link: str | None = None  # a permalink / jump URL where the platform has one


class Directory(Protocol):
    """The platform's view, for the author of one message."""

    async def visible_channels(self, channel_ids: Sequence[str]) -> set[str]:
        """Those of `channel_ids` the author may read."""

    async def can_read_thread(self, channel_id: str, thread_id: str) -> bool:
        """Whether the author may read a thread of a channel they can see (private threads may be closed)."""

    async def link(self, channel_id: str, thread_id: str, message_id: str) -> str | None:
        """A link to a message (or, without its id, to its thread); None when there is none."""

    def history(
        self, channel_id: str, thread_id: str = "", *, since: datetime | None = None
    ) -> AsyncIterator[HistoryMessage]:
        """A thread's messages (with `thread_id`) or a channel's since `since`, oldest first, read from the
        platform page by page within its rate limits. Raises NotSupported where the adapter cannot yet;
        the caller checks first that the author may read the channel (`visible_channels`)."""


def history_not_supported(platform: str) -> NotSupported:
    """The refusal of a platform whose history cannot be read yet."""
    return NotSupported(f"Reading a channel's history on {platform} is not supported yet.")


class OnlyThisChannel:
    """The safe default: the author can see the channel they are writing in, nothing else."""

    def __init__(self, channel_id: str) -> None:
        self._channel_id = channel_id

    async def visible_channels(self, channel_ids: Sequence[str]) -> set[str]:
        """Just the current channel."""
        return {self._channel_id} & set(channel_ids)

    async def can_read_thread(self, channel_id: str, thread_id: str) -> bool:
        """Threads of the current channel are visible with it."""
        return channel_id == self._channel_id

    async def link(self, channel_id: str, thread_id: str, message_id: str) -> str | None:
        """No links."""
        return None

    async def history(
        self, channel_id: str, thread_id: str = "", *, since: datetime | None = None
    ) -> AsyncIterator[HistoryMessage]:
        """No platform to read from."""
        raise history_not_supported("this platform")
        yield  # an async generator, like the adapters' own


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

    def becoming_admin(self, name: str) -> str:
        """How one becomes an admin on platform `name` ("" for an unknown one)."""
        platform = self.get(name)
        return platform.becoming_admin if platform is not None else ""

    def help_intro(self, name: str) -> str:
        """/help's first line on platform `name`."""
        platform = self.get(name)
        return platform.help_intro if platform is not None else DEFAULT_HELP_INTRO
