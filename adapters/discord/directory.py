"""/search's view of Discord for one member: the channels they may read, and message links.

Guild channels are visible when the member's permissions there include View Channel (computed
from the cached guild, roles and overwrites, as Discord does). A private thread is visible only
when it is the one being asked in, the member started it, or they may manage threads there. A DM
is visible only to its own participant. Anything Discord will not tell counts as not visible.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import discord

from bot.directory import HistoryMessage, history_not_supported

log = logging.getLogger(__name__)


class DiscordDirectory:
    """The Directory (bot/directory.py) of one Discord user, in one guild or DM."""

    def __init__(self, member: discord.User | discord.Member, channel_id: int, thread_id: int | None) -> None:
        self._member = member
        self._current = {channel_id, thread_id} - {None}

    @property
    def _guild(self) -> discord.Guild | None:
        return self._member.guild if isinstance(self._member, discord.Member) else None

    async def visible_channels(self, channel_ids: Sequence[str]) -> set[str]:
        """Those of `channel_ids` where the member has View Channel; in a DM, only that DM."""
        guild = self._guild
        if guild is None:
            return {c for c in channel_ids if c.isdigit() and int(c) in self._current}
        visible = set()
        for channel_id in channel_ids:
            channel = guild.get_channel(int(channel_id)) if channel_id.isdigit() else None
            if channel is not None and channel.permissions_for(self._member).view_channel:  # type: ignore[arg-type]
                visible.add(channel_id)
        return visible

    async def can_read_thread(self, channel_id: str, thread_id: str) -> bool:
        """Public threads go with their channel; private ones need membership by start or by right."""
        if not thread_id or int(thread_id) in self._current:
            return True
        guild = self._guild
        if guild is None:
            return False
        thread = guild.get_thread(int(thread_id))
        try:
            if thread is None:
                fetched = await guild.fetch_channel(int(thread_id))
                if not isinstance(fetched, discord.Thread):
                    return False
                thread = fetched
        except discord.HTTPException:
            log.warning("could not look up thread %s; hidden from /search", thread_id)
            return False
        if thread.type != discord.ChannelType.private_thread:
            return True
        if thread.owner_id == self._member.id:
            return True
        parent = thread.parent
        return parent is not None and parent.permissions_for(self._member).manage_threads  # type: ignore[arg-type]

    async def link(self, channel_id: str, thread_id: str, message_id: str) -> str | None:
        """https://discord.com/channels/<guild>/<channel or thread>[/<message>]."""
        guild = self._guild
        where = thread_id or channel_id
        base = f"https://discord.com/channels/{guild.id if guild else '@me'}/{where}"
        return f"{base}/{message_id}" if message_id.isdigit() else base

    async def history(
        self, channel_id: str, thread_id: str = "", *, since: datetime | None = None
    ) -> AsyncIterator[HistoryMessage]:
        """Not read from Discord yet: the catch-up feature adds it (GET /channels/{id}/messages)."""
        raise history_not_supported("Discord")
        yield  # an async generator, as the protocol has it
