"""What only the platform knows: who may see which channel, and a message's link.

/search must never show a person a message from a channel they cannot read (a DM, a private
channel). The adapter answers with the platform's own rules; without an adapter's answer, only
the channel the question was asked in counts as visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Directory(Protocol):
    """The platform's view, for the author of one message."""

    async def visible_channels(self, channel_ids: Sequence[str]) -> set[str]:
        """Those of `channel_ids` the author may read."""

    async def can_read_thread(self, channel_id: str, thread_id: str) -> bool:
        """Whether the author may read a thread of a channel they can see (private threads may be closed)."""

    async def link(self, channel_id: str, thread_id: str, message_id: str) -> str | None:
        """A link to a message (or, without its id, to its thread); None when there is none."""


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
