"""/search's and /catchup's view of Slack for one person: the channels they may read, permalinks, history.

A person may read the conversations they are a member of (users.conversations: channels, private
channels, group DMs and DMs) and every public channel of the workspace (conversations.info). Any
API failure counts as "not visible": a search that shows too little is better than a leak.

History is read with conversations.history and conversations.replies through a client that waits out
every 429's Retry-After (slack-sdk's own retry handler): a commercially distributed app may get one
call a minute, so a long read is slow, never a failure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.ttl_cache import TTLCache
from adapters.slack.events import UNLABELLED_USER, decode_text
from adapters.slack.markdown import to_mrkdwn
from bot.directory import HistoryMessage
from bot.errors import NotAllowed

log = logging.getLogger(__name__)

MEMBERSHIP_SECONDS = 60  # someone who just left a channel stops seeing it within a minute
PUBLIC_SECONDS = 600  # a channel turned private is hidden within ten minutes
MEMBERSHIP_TYPES = "public_channel,private_channel,mpim,im"
NAME_SECONDS = 600
HISTORY_PAGE = 200  # Slack's most is 999; it may send fewer (15 for some apps)
HISTORY_RETRIES = 100  # 429s waited out per call: at one call a minute, a read is slow but finishes
# What people wrote (and other bots); Slack's own notices (joins, topics, pins…) are not the conversation.
SPOKEN_SUBTYPES = {None, "thread_broadcast", "bot_message", "file_share", "me_message"}
_TS = re.compile(r"\d+\.\d+")
NOT_IN_CHANNEL = "I'm not a member of this channel, so I can't read its history. Add me with /invite and try again."


def display_name(user: dict[str, Any], fallback: str) -> str:
    """A users.info user's name as people see it."""
    profile = user.get("profile") or {}
    return str(profile.get("display_name") or profile.get("real_name") or user.get("name") or fallback)


class SlackChannels:
    """Caches shared by every search in one process: who is in what, which channels are public."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        # History reads wait out every rate limit (Retry-After); other calls give up after the adapter's few.
        patient = [h for h in client.retry_handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)]
        patient.append(AsyncRateLimitErrorRetryHandler(max_retry_count=HISTORY_RETRIES))
        self.reader = AsyncWebClient(
            token=client.token, base_url=client.base_url, timeout=client.timeout, retry_handlers=patient
        )
        self._members: TTLCache[str, frozenset[str]] = TTLCache(MEMBERSHIP_SECONDS)
        self._info_cache: TTLCache[str, dict[str, Any]] = TTLCache(PUBLIC_SECONDS)
        self._names: TTLCache[str, str] = TTLCache(NAME_SECONDS)
        self._workspace_url: str | None = None

    async def name_of(self, user_id: str) -> str:
        """A person's display name (their id when Slack will not say)."""
        cached = self._names.get(user_id)
        if cached is not None:
            return cached
        try:
            name = display_name((await self.reader.users_info(user=user_id))["user"], user_id)
        except Exception:
            log.warning("users.info failed for %s; named by id in a catch-up", user_id, exc_info=True)
            return user_id
        return self._names.put(user_id, name)

    async def permalink(self, channel_id: str, ts: str, thread_ts: str) -> str | None:
        """A message's permalink, written from the workspace's address (auth.test) without a call per message."""
        if self._workspace_url is None:
            try:
                self._workspace_url = str((await self.reader.auth_test()).get("url") or "")
            except Exception:
                log.warning("auth.test failed; a catch-up has no links", exc_info=True)
                self._workspace_url = ""
        if not self._workspace_url:
            return None
        link = f"{self._workspace_url.rstrip('/')}/archives/{channel_id}/p{ts.replace('.', '')}"
        return f"{link}?thread_ts={thread_ts}&cid={channel_id}" if thread_ts and thread_ts != ts else link

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
        info = await self._info(channel_id)
        return bool(info.get("is_channel")) and not any(
            info.get(flag) for flag in ("is_private", "is_im", "is_mpim", "is_group")
        )

    async def channel_name(self, channel_id: str) -> str:
        """The channel's name as people see it (`#general`), or its id when Slack will not say."""
        name = (await self._info(channel_id)).get("name")
        return f"#{name}" if name else channel_id

    async def _info(self, channel_id: str) -> dict[str, Any]:
        """conversations.info's channel (empty when it failed: treated as private, named by id)."""
        cached = self._info_cache.get(channel_id)
        if cached is not None:
            return cached
        try:
            info = dict((await self.client.conversations_info(channel=channel_id))["channel"])
        except Exception:
            log.warning("conversations.info failed for %s; treated as private", channel_id, exc_info=True)
            return {}
        return self._info_cache.put(channel_id, info)


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
    ) -> AsyncGenerator[HistoryMessage]:
        """A thread's messages (conversations.replies), or a channel's since `since` (conversations.history)
        with the replies in its threads since then; newest page first, as Slack pages them."""
        oldest = f"{since.timestamp():.6f}" if since is not None else None
        if thread_id:
            async for raw in self._pages("conversations_replies", channel=channel_id, ts=thread_id, oldest=oldest):
                yield await self._message(channel_id, raw)
            return
        seen: set[str] = set()
        async for raw in self._pages("conversations_history", channel=channel_id, oldest=oldest):
            if raw.get("ts") in seen:
                continue
            seen.add(str(raw.get("ts")))
            yield await self._message(channel_id, raw)
            if raw.get("reply_count") and float(raw.get("latest_reply") or 0) >= float(oldest or 0):
                replies = self._pages("conversations_replies", channel=channel_id, ts=raw["ts"], oldest=oldest)
                async for reply in replies:
                    if reply.get("ts") not in seen:  # the parent comes again; a broadcast reply was in both
                        seen.add(str(reply.get("ts")))
                        yield await self._message(channel_id, reply)

    async def _pages(self, method: str, **args: Any) -> AsyncIterator[dict[str, Any]]:
        """Every spoken message of a paged history call (the method named, cursor pages)."""
        call = getattr(self._channels.reader, method)
        cursor = None
        while True:
            try:
                page = await call(**{k: v for k, v in args.items() if v is not None}, limit=HISTORY_PAGE, cursor=cursor)
            except SlackApiError as exc:
                if exc.response.get("error") in ("not_in_channel", "channel_not_found"):
                    raise NotAllowed(NOT_IN_CHANNEL) from None
                raise
            for raw in page.get("messages") or ():
                if raw.get("subtype") in SPOKEN_SUBTYPES and raw.get("ts"):
                    yield raw
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not page.get("has_more", True):
                return

    async def _message(self, channel_id: str, raw: dict[str, Any]) -> HistoryMessage:
        ts = str(raw["ts"])
        thread_ts = str(raw.get("thread_ts") or "")
        author = str(raw.get("user") or raw.get("bot_id") or "")
        if raw.get("user"):
            name = await self._channels.name_of(author)
        else:
            name = str(raw.get("username") or (raw.get("bot_profile") or {}).get("name") or author or "a bot")
        text = str(raw.get("text") or "")
        for user_id in dict.fromkeys(UNLABELLED_USER.findall(text)):  # people by name, as the adapter gives them
            text = text.replace(f"<@{user_id}>", f"<@{user_id}|{await self._channels.name_of(user_id)}>")
        return HistoryMessage(
            author_id=author,
            author_name=name,
            text=decode_text(text, ""),
            created_at=datetime.fromtimestamp(float(ts), UTC),
            message_id=ts,
            thread_id=thread_ts if thread_ts != ts else "",
            link=await self._channels.permalink(channel_id, ts, thread_ts),
        )


class SlackChannelAccess:
    """Slack's ChannelAccess (bot/directory.py), for scheduled digests: the channel's history as the bot reads
    it (it must be in the channel), and chat.postMessage as the bot."""

    def __init__(self, channels: SlackChannels) -> None:
        self._channels = channels

    def team_directory(self, team_id: str) -> SlackDirectory:
        return SlackDirectory(self._channels, "", "")  # history reads only: no person's view to check

    async def post_to_channel(self, team_id: str, channel_id: str, text: str) -> None:
        await self._channels.client.chat_postMessage(channel=channel_id, text=to_mrkdwn(text))

    @classmethod
    def from_settings(cls, token: str, api_url: str) -> SlackChannelAccess:
        """Over the Web API alone, with no event connection (`python -m bot digests run`)."""
        return cls(SlackChannels(AsyncWebClient(token=token, base_url=api_url)))
