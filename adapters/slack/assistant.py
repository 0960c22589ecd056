"""The bot in Slack's AI-app assistant pane, on bolt's own Assistant middleware.

A pane is an assistant thread in the person's DM with the bot, opened beside whatever they are viewing.
When a thread starts it gets suggested prompts; the channel the person views (the thread's context, sent
when the thread starts and again whenever they switch) is kept in the bot's database
(storage/assistant_threads.py), so it survives restarts and every worker sees it. A question there shows a
status while it is answered, the first one titles the thread, and it is either a catch-up of the viewed
channel (the suggested prompt, or `/catchup [since]` typed there) run as the /catchup command (the same
visibility rule, exclusions, metering and answer), or a chat turn whose conversation is the thread. With
no channel viewed, `/catchup` catches up on the pane thread itself (as /catchup does in any thread), and
the suggested prompt asks for a channel. The pane is the asker's own DM, so even a private answer is
posted in the thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import AsyncAssistantThreadContextStore
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import bot_user_of, is_from_a_person, team_of
from adapters.slack.responder import SlackResponder
from bot.chat.engine import Engine
from bot.messages import Command, IncomingMessage
from storage.assistant_threads import AssistantThreads, PaneThread, ViewedChannel

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)

CATCH_ME_UP = "Catch me up on this channel"
SUGGESTED_PROMPTS = (
    {"title": "Catch me up", "message": CATCH_ME_UP},
    {"title": "Ask me anything", "message": "What can you help me with?"},
)
PROMPTS_TITLE = "Try one of these:"
NEEDS_A_CHANNEL = (
    "Open a channel beside this pane and ask again: I catch you up on the channel you are viewing, and you are"
    " not viewing one now."
)
TITLE_CHARS = 80  # a thread's title is its first question, shortened
_WORDS = re.compile(r"[\w']+")
# Message events in a DM that bolt's Assistant acknowledges and drops: edits and deletions still go on to
# the adapter's own listener, so they reach history and memory as elsewhere.
PASSED_ON_SUBTYPES = frozenset({"message_changed", "message_deleted"})


class StoredThreadContexts(AsyncAssistantThreadContextStore):
    """bolt's thread context store on the bot's database (instead of its default: message metadata, read
    back with a conversations.replies call per question)."""

    def __init__(self, threads: AssistantThreads, now: Callable[[], Any]) -> None:
        self._threads = threads
        self._now = now

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        await self._threads.remember(PaneThread(channel_id, thread_ts), _viewed(context), self._now())

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        viewed = await self._threads.viewed(channel_id, thread_ts)
        if viewed is None:
            return None
        return AssistantThreadContext(
            {"channel_id": viewed.channel_id, "team_id": viewed.team_id, "enterprise_id": viewed.enterprise_id}
        )


class PaneAssistant(AsyncAssistant):
    """bolt's Assistant, except that edits and deletions in a DM thread go on to the app's listeners."""

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        event = req.body.get("event") or {}
        if event.get("type") == "message" and event.get("subtype") in PASSED_ON_SUBTYPES:
            return await next()
        return await super().async_process(req=req, resp=resp, next=next)


class PaneResponder:
    """Answers a question asked in the pane: in its thread, progress as the thread's status
    (assistant.threads.setStatus: "is reading #general…")."""

    def __init__(self, inner: SlackResponder, client: AsyncWebClient, thread: PaneThread,
                 reading: Callable[[], Awaitable[str]] | None = None) -> None:  # fmt: skip
        self._inner = inner
        self._client = client
        self._thread = thread
        self._reading = reading  # the viewed channel's name, asked once reading has begun (after the check)
        self.status = ""

    async def send_text(self, text: str, *, private: bool = False) -> None:
        """Post in the thread: the pane is the asker's DM, so a private answer is posted there too."""
        await self._inner.send_text(text)

    def stream(self) -> Any:
        """The thread's streamed reply."""
        return self._inner.stream()

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        """Upload into the thread (the asker's DM)."""
        await self._inner.send_file(data, filename, content_type, caption=caption)

    async def show_status(self, text: str, *, private: bool = False) -> None:
        """The thread's status line; "reading history…" names the channel being read."""
        if self._reading is not None and text.startswith("reading history"):
            text = text.replace("history", await self._reading(), 1)
        await self._set_status(f"is {text}")

    async def send_error(self, message: str) -> None:
        """In the thread: only the asker reads it."""
        await self._inner.send_text(f":warning: {message}")

    async def ask_approval(self, question: str, asker_id: str, seconds: float) -> bool | None:
        """Allow / Deny buttons in the thread (the asker's DM)."""
        return await self._inner.ask_approval(question, asker_id, seconds)

    async def clear_status(self) -> None:
        """The work is done: no status (Slack also clears it when the bot posts)."""
        if self.status:
            await self._set_status("")

    async def _set_status(self, status: str) -> None:
        self.status = status
        await self._client.assistant_threads_setStatus(
            channel_id=self._thread.channel_id, thread_ts=self._thread.thread_ts, status=status
        )


class AssistantPane:
    """The pane's listeners, for one SlackAdapter."""

    def __init__(self, adapter: SlackAdapter, engine: Engine) -> None:
        self._adapter = adapter
        self._engine = engine
        self._threads = engine.store.assistant_threads

    def middleware(self) -> AsyncAssistant:
        """bolt's Assistant with the pane's listeners, its thread contexts kept in the database."""
        assistant = PaneAssistant(thread_context_store=StoredThreadContexts(self._threads, self._engine.now))
        assistant.thread_started(self._started)
        assistant.thread_context_changed(self._context_changed)
        assistant.user_message(self._asked)
        return assistant

    async def _started(self, payload: dict[str, Any], body: dict[str, Any], context: dict[str, Any],
                       set_suggested_prompts: Any) -> None:  # fmt: skip
        """A new pane thread: remember what the person views, offer the prompts."""
        await self._remember(payload, body, context)
        await set_suggested_prompts(prompts=list(SUGGESTED_PROMPTS), title=PROMPTS_TITLE)

    async def _context_changed(self, payload: dict[str, Any], body: dict[str, Any], context: dict[str, Any]) -> None:
        """The person opened another channel beside the pane."""
        await self._remember(payload, body, context)

    async def _remember(self, payload: dict[str, Any], body: dict[str, Any], context: dict[str, Any]) -> None:
        thread = payload.get("assistant_thread") or {}
        pane = PaneThread(
            str(thread.get("channel_id") or ""), str(thread.get("thread_ts") or ""), team_of(body, context),
            str(thread.get("user_id") or ""),
        )  # fmt: skip
        await self._threads.remember(pane, _viewed(thread.get("context") or {}), self._engine.now())

    async def _asked(self, payload: dict[str, Any], body: dict[str, Any], context: dict[str, Any],
                     set_title: Any, get_thread_context: Any) -> None:  # fmt: skip
        """A question in a pane thread: a catch-up of the viewed channel, or a chat turn."""
        event = payload
        if not is_from_a_person(event, bot_user_of(context)):
            return
        if not await self._engine.first_delivery("slack", f"{event['channel']}:{event['ts']}"):
            return  # a redelivery (X-Slack-Retry-Num)
        message, _ = await self._adapter.prepared(event, body, context)
        pane = PaneThread(message.channel_id, message.thread_id, message.team_id, message.author.id)
        if await self._threads.claim_title(pane, self._engine.now()):
            await set_title(_title(message.text))
        catchup = self._catchup_command(message)
        viewed = await get_thread_context() if catchup is not None else None
        channel = str((viewed or {}).get("channel_id") or "")

        async def reading() -> str:
            return await self._adapter.channels.channel_name(channel)

        inner = self._adapter.responder(message, context)
        responder = PaneResponder(inner, self._adapter.client, pane, reading if channel else None)
        try:
            if catchup is None:
                await self._engine.handle(message, responder)
            elif not channel and message.command is not None:
                # `/catchup` typed with no channel viewed: in a thread, /catchup is the whole thread, and
                # this is one (the pane's), so it is answered as that; its reading needs im:history.
                await self._engine.handle(message, responder)
            elif not channel:
                await responder.send_text(NEEDS_A_CHANNEL)  # "Catch me up on this channel": it names one
            else:
                # The catch-up is the /catchup command about the viewed channel, asked from the pane: the
                # message keeps its author's directory (whose current channel is the DM, so the viewed one
                # must pass the same visibility check as any other) and its answer goes to the pane.
                about = replace(message, channel_id=channel, thread_id="", command=catchup)
                await self._engine.handle(about, responder)
        finally:
            await responder.clear_status()

    def _catchup_command(self, message: IncomingMessage) -> Command | None:
        """The /catchup a pane question asks for: the suggested prompt, or `/catchup [since]` typed there."""
        if message.command is not None:
            spec = self._engine.commands.get(message.command.name)
            return message.command if spec is not None and spec.name == "catchup" else None
        if _WORDS.findall(message.text.lower()) == _WORDS.findall(CATCH_ME_UP.lower()):
            return Command("catchup")
        return None


def _viewed(context: dict[str, Any]) -> ViewedChannel | None:
    channel = str(context.get("channel_id") or "")
    if not channel:
        return None
    return ViewedChannel(channel, str(context.get("team_id") or ""), str(context.get("enterprise_id") or ""))


def _title(question: str) -> str:
    text = " ".join(question.split()) or "New chat"
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"
