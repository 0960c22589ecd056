"""What only the platform knows, for the author of one message: who may see which channel, a message's
link, and a channel's or thread's history.

/search and catch-ups must never show a person a message from a channel they cannot read (a DM, a
private channel). The adapter answers with the platform's own rules; without an adapter's answer,
only the channel the question was asked in counts as visible.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.errors import NotSupported


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
    ) -> AsyncGenerator[HistoryMessage]:
        """A thread's messages (with `thread_id`: all of them) or a channel's since `since` with the replies in
        its threads since then, read from the platform page by page within its rate limits (slow, never failing
        for being slow). A channel's come newest first as far as the platform pages that way (the caller sorts
        by time, and may stop reading at a cap: what it kept should be the newest). Raises NotSupported where
        the adapter cannot; the caller checks first that the author may read the channel (`visible_channels`)."""


class ChannelAccess(Protocol):
    """What a scheduled digest needs of a connected platform, with no incoming message to answer: the bot's
    own view of a team's channels, and posting a message into one (bot/digests.py). Each adapter serving
    a platform registers itself on the engine (Engine.channel_access)."""

    def team_directory(self, team_id: str) -> Directory:
        """The team's channels as the bot itself reads them."""

    async def post_to_channel(self, team_id: str, channel_id: str, text: str) -> None:
        """Post `text` into the channel as the bot (mentioning nobody)."""


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
    ) -> AsyncGenerator[HistoryMessage]:
        """No platform to read from."""
        raise history_not_supported("this platform")
        yield  # an async generator, like the adapters' own
