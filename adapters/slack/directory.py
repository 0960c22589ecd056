"""/search's view of Slack for one person: the channels they may read, and permalinks.

A person may read the conversations they are a member of (users.conversations: channels, private
channels, group DMs and DMs) and every public channel of the workspace (conversations.info). Any
API failure counts as "not visible": a search that shows too little is better than a leak.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.ttl_cache import TTLCache
from bot.directory import HistoryMessage, history_not_supported

log = logging.getLogger(__name__)

MEMBERSHIP_SECONDS = 60  # someone who just left a channel stops seeing it within a minute
PUBLIC_SECONDS = 600  # a channel turned private is hidden within ten minutes
MEMBERSHIP_TYPES = "public_channel,private_channel,mpim,im"
_TS = re.compile(r"\d+\.\d+")


class SlackChannels:
    """Caches shared by every search in one process: who is in what, which channels are public."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._members: TTLCache[str, frozenset[str]] = TTLCache(MEMBERSHIP_SECONDS)
        self._public: TTLCache[str, bool] = TTLCache(PUBLIC_SECONDS)

    async def member_of(self, user_id: str) -> frozenset[str]:
        """The conversations `user_id` is a member of (empty when Slack will not say)."""
        cached = self._members.get(user_id)
        if cached is not None:
            return cached
        found: set[str] = set()
        cursor = None
        try:
            while True:
                page = await self.client.users_conversations(
                    user=user_id, types=MEMBERSHIP_TYPES, limit=999, cursor=cursor
                )
                found.update(str(c["id"]) for c in page.get("channels") or ())
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except Exception:
            log.warning("users.conversations failed; /search shows only public channels", exc_info=True)
            return frozenset()
        return self._members.put(user_id, frozenset(found))

    async def is_public(self, channel_id: str) -> bool:
        """Whether anyone in the workspace may read the channel."""
        cached = self._public.get(channel_id)
        if cached is not None:
            return cached
        try:
            info = (await self.client.conversations_info(channel=channel_id))["channel"]
        except Exception:
            log.warning("conversations.info failed for %s; treated as private", channel_id, exc_info=True)
            return False
        public = bool(info.get("is_channel")) and not any(
            info.get(flag) for flag in ("is_private", "is_im", "is_mpim", "is_group")
        )
        return self._public.put(channel_id, public)


class SlackDirectory:
    """The Directory (bot/directory.py) of one Slack user."""

    def __init__(self, channels: SlackChannels, user_id: str, current_channel: str) -> None:
        self._channels = channels
        self._user_id = user_id
        self._current = current_channel

    async def visible_channels(self, channel_ids: Sequence[str]) -> set[str]:
        """Those of `channel_ids` the user is in, or that are public; the current one always."""
        member = await self._channels.member_of(self._user_id)
        visible = {c for c in channel_ids if c in member or c == self._current}
        for channel in set(channel_ids) - visible:
            if await self._channels.is_public(channel):
                visible.add(channel)
        return visible

    async def can_read_thread(self, channel_id: str, thread_id: str) -> bool:
        """Slack threads are readable by whoever can read their channel."""
        return True

    async def link(self, channel_id: str, thread_id: str, message_id: str) -> str | None:
        """chat.getPermalink of the message, or of its thread's first message."""
        ts = message_id if _TS.fullmatch(message_id) else thread_id
        if not _TS.fullmatch(ts):
            return None
        try:
            return str((await self._channels.client.chat_getPermalink(channel=channel_id, message_ts=ts))["permalink"])
        except Exception:
            log.warning("chat.getPermalink failed for %s", channel_id, exc_info=True)
            return None

    async def history(
        self, channel_id: str, thread_id: str = "", *, since: datetime | None = None
    ) -> AsyncIterator[HistoryMessage]:
        """Not read from Slack yet: the catch-up feature adds it (conversations.history and conversations.replies)."""
        raise history_not_supported("Slack")
        yield  # an async generator, as the protocol has it
