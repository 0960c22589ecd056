"""/search's and /catchup's view of Discord for one member: the channels they may read, links, history.

Guild channels are visible when the member's permissions there include View Channel (computed
from the cached guild, roles and overwrites, as Discord does). A private thread is visible only
when it is the one being asked in, the member started it, or they may manage threads there. A DM
is visible only to its own participant. Anything Discord will not tell counts as not visible.

History (GET /channels/{id}/messages, newest first, pages of 100; a channel's public archived threads from
GET /channels/{id}/threads/archived/public) is read through discord.py, which waits out 429s itself;
reading it also needs the member's Read Message History there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime

import discord

from adapters.common.text_split import split_chunks
from bot.directory import HistoryMessage
from bot.errors import NotAllowed

log = logging.getLogger(__name__)

SPOKEN = (discord.MessageType.default, discord.MessageType.reply)  # not joins, pins, thread notices…
CANNOT_READ = "You cannot read that channel's history on Discord, so I cannot catch you up on it."


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
    ) -> AsyncGenerator[HistoryMessage]:
        """A thread's messages, or a channel's after `since` (newest first: pages before the newest, stopping at
        the first older than `since`), then those of its active threads after `since`, then of its public
        archived threads archived after `since` (an archived thread had no activity after its archiving),
        each thread newest first."""
        target = await self._readable(thread_id or channel_id)
        async for item in _newest_first(target, None if thread_id else since, thread_id):
            yield item
        if thread_id or not isinstance(target, discord.TextChannel):
            return
        for thread in target.threads:
            if not await self.can_read_thread(channel_id, str(thread.id)):
                continue
            async for item in _thread_since(thread, since):
                yield item
        # GET /channels/{id}/threads/archived/public: the most recently archived first, so the first archived
        # before `since` ends the read. Private archived threads are not read.
        async for thread in target.archived_threads(limit=None):
            if since is not None and thread.archive_timestamp < since:
                return
            async for item in _thread_since(thread, since):
                yield item

    async def _readable(self, channel_id: str) -> discord.abc.Messageable:
        """The channel or thread, when the member may see it and read its history (NotAllowed otherwise)."""
        guild = self._guild
        if guild is None:
            if not channel_id.isdigit() or int(channel_id) not in self._current:
                raise NotAllowed(CANNOT_READ)
            return self._member.dm_channel or await self._member.create_dm()
        channel = guild.get_channel_or_thread(int(channel_id)) if channel_id.isdigit() else None
        if not isinstance(channel, discord.TextChannel | discord.Thread | discord.VoiceChannel):
            raise NotAllowed(CANNOT_READ)
        permissions = channel.permissions_for(self._member)  # type: ignore[arg-type]
        if not (permissions.view_channel and permissions.read_message_history):
            raise NotAllowed(CANNOT_READ)
        return channel


async def _thread_since(thread: discord.Thread, since: datetime | None) -> AsyncGenerator[HistoryMessage]:
    """A thread's messages after `since`, newest first; none read when its last message is older."""
    last = thread.last_message_id
    if since is not None and last is not None and discord.utils.snowflake_time(last) < since:
        return
    async for item in _newest_first(thread, since, str(thread.id)):
        yield item


async def _newest_first(
    where: discord.abc.Messageable, since: datetime | None, thread_id: str
) -> AsyncGenerator[HistoryMessage]:
    """Spoken messages after `since`, newest first: pages of 100 `before` the last one, the cheap way to keep the
    newest when a catch-up stops at its cap (discord.py's `after` with newest first would page to the start)."""
    async for message in where.history(limit=None, oldest_first=False):
        if since is not None and message.created_at <= since:
            return
        if message.type in SPOKEN:
            yield _history_message(message, thread_id)


def _history_message(message: discord.Message, thread_id: str) -> HistoryMessage:
    return HistoryMessage(
        author_id=str(message.author.id),
        author_name=message.author.display_name,
        text=message.clean_content,  # mentions as @names, as people read them
        created_at=message.created_at,
        message_id=str(message.id),
        thread_id=thread_id,
        link=message.jump_url,
    )


class DiscordChannelAccess:
    """Discord's ChannelAccess (bot/directory.py), for scheduled digests: the channel's history as the bot
    itself may read it (its own member's permissions), and channel.send as the bot, pinging nobody, in
    messages of at most `limit` characters."""

    def __init__(self, client: discord.Client, limit: int) -> None:
        self._client = client
        self._limit = limit

    def team_directory(self, team_id: str) -> DiscordDirectory:
        guild = self._client.get_guild(int(team_id)) if team_id.isdigit() else None
        if guild is None or guild.me is None:
            raise NotAllowed(f"The bot is not in the Discord server {team_id} (any more).")
        return DiscordDirectory(guild.me, 0, None)

    async def post_to_channel(self, team_id: str, channel_id: str, text: str) -> None:
        guild = self._client.get_guild(int(team_id)) if team_id.isdigit() else None
        channel = guild.get_channel(int(channel_id)) if guild is not None and channel_id.isdigit() else None
        if not isinstance(channel, discord.TextChannel | discord.VoiceChannel):
            raise NotAllowed(f"The bot cannot post in Discord channel {channel_id} (deleted, or not a text channel).")
        for chunk in split_chunks(text, self._limit):
            await channel.send(chunk.text, allowed_mentions=discord.AllowedMentions.none())
