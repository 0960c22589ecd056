"""Answering on Slack: messages in the thread, edit-based streaming at most once a second,
long text split under Slack's limit, ephemeral private replies, files through files_upload_v2."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.common.approvals import ALLOW, DENY, PendingApprovals, outcome
from adapters.common.edited_reply import EditedReply
from adapters.common.text_split import first_cut, reopen_after, split_message
from adapters.slack.markdown import to_mrkdwn
from adapters.slack.mentions import neutralise, settled_length
from bot.errors import CannotPost

log = logging.getLogger(__name__)

# Slack truncates a message's text at 40,000 characters but renders long ones poorly; its own
# guidance is to keep messages short. 3,500 leaves room for the fence repairs of the splitter.
MESSAGE_LIMIT = 3_500
# chat.update is Tier 3 (~50/min per workspace; in practice about one per second per message).
EDIT_INTERVAL = 1.0
# A private exchange's progress is an ephemeral line, which Slack cannot edit or delete: one at first, then
# at most one more this often, so a slow read (history at one call a minute) still shows it is moving.
PRIVATE_STATUS_INTERVAL = 30.0


def slack_reply(
    client: AsyncWebClient,
    channel: str,
    thread_ts: str | None,
    *,
    interval: float = EDIT_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    placeholder_ts: str | None = None,
    reopen: str = "",
) -> EditedReply:
    """A reply streamed into one Slack message by chat.update (continued in new messages when long)."""

    async def post(text: str) -> str:
        response = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=to_mrkdwn(text))
        return str(response["ts"])

    async def edit(ts: str, text: str) -> None:
        await client.chat_update(channel=channel, ts=ts, text=to_mrkdwn(text))

    return EditedReply(
        post, edit, limit=MESSAGE_LIMIT, interval=interval, clock=clock, interrupted=" _[reply interrupted]_",
        handle=placeholder_ts, reopen=reopen,
    )  # fmt: skip


# Native streaming sends the first text at once, then what has gathered at most every STREAM_INTERVAL
# seconds (chat.appendStream is rate limited like other chat writes).
STREAM_INTERVAL = 0.5
NATIVE_HOLD = 500  # native streaming holds back this much below the limit, to choose where to split


class NativeSlackReply:
    """Slack's native streaming (chat.startStream/appendStream/stopStream, through slack-sdk's helper).

    Where Slack refuses it, the reply continues as an EditedReply (chat.update at most once a
    second). A reply longer than one message is cut at a good break before the limit: the stream
    stops there (closing an open code block) and the rest continues in new messages.
    """

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str, *, team_id: str, user_id: str,
        fallback: Callable[[Any, str], EditedReply], placeholder_ts: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._client = client
        # slack-sdk's own buffer is off (1 character): the gathering is ours, so the first text is not held back.
        self._stream_args: dict[str, Any] = {"channel": channel, "thread_ts": thread_ts, "recipient_team_id": team_id,
                             "recipient_user_id": user_id, "buffer_size": 1}  # fmt: skip
        self._clock = clock
        self._last = float("-inf")
        self._make_fallback = fallback
        self._placeholder = placeholder_ts
        self._channel = channel
        self._streamer: Any = None
        self._text = ""
        self._streamed = 0  # characters handed to the native stream
        self._fallback: EditedReply | None = None

    async def append(self, text: str) -> None:
        """Stream what fits; past the limit, finish this message and continue in new ones."""
        self._text += text
        if self._fallback is not None:
            await self._fallback.append(text)
        elif len(self._text) > MESSAGE_LIMIT:
            await self._overflow()
        else:
            await self._stream_up_to(MESSAGE_LIMIT - NATIVE_HOLD, gather=True)

    async def finish(self) -> None:
        """Stream the rest and stop; the placeholder goes."""
        if self._fallback is not None:
            await self._fallback.finish()
            return
        wait = STREAM_INTERVAL - (self._clock() - self._last)
        if self._streamer is not None and len(self._text) > self._streamed and wait > 0:
            await asyncio.sleep(wait)  # the last append keeps to the same rate
        await self._stream_up_to(len(self._text))
        if self._fallback is None and self._streamer is not None:
            await self._stop()

    async def abandon(self) -> None:
        """Mark the reply as cut off."""
        if self._fallback is not None:
            await self._fallback.abandon()
        elif self._streamer is not None:
            await self._stream_text(" _[reply interrupted]_")
            await self._stop()

    async def _stream_up_to(self, end: int, *, gather: bool = False) -> None:
        """Hand the text up to `end` to the stream; with `gather`, not sooner than STREAM_INTERVAL after the last.

        While gathering, a piece never ends inside a `<…>`: a mention split across two pieces would ping."""
        end = min(end, len(self._text))
        if gather:
            end = settled_length(self._text[:end])
        if end <= self._streamed:
            return
        if gather and self._streamer is not None and self._clock() - self._last < STREAM_INTERVAL:
            return
        await self._stream_text(self._text[self._streamed : end])
        self._streamed = end
        self._last = self._clock()

    async def _stream_text(self, text: str) -> None:
        if self._fallback is not None:
            return
        try:
            if self._streamer is None:
                self._streamer = await self._client.chat_stream(**self._stream_args)
            await self._streamer.append(markdown_text=neutralise(text))
        except SlackApiError as exc:
            await self._fall_back(exc)

    async def _stop(self) -> None:
        try:
            await self._streamer.stop()
        except SlackApiError as exc:
            await self._fall_back(exc)
            return
        await self._drop_placeholder()

    async def _fall_back(self, exc: SlackApiError) -> None:
        log.info("Slack refused streaming (%s); answering by chat.update", exc.response.get("error"))
        if self._streamed:
            # Part of the reply is already shown in the stream: the rest follows it in a new message
            # (not in the "thinking…" line above it), reopening a code block the stream left open.
            await self._drop_placeholder()
            self._fallback = self._make_fallback(None, reopen_after(self._text[: self._streamed]))
            await self._fallback.append(self._text[self._streamed :])
            return
        self._fallback = self._make_fallback(self._placeholder, "")
        self._placeholder = None
        await self._fallback.append(self._text)

    async def _overflow(self) -> None:
        first = first_cut(self._text, MESSAGE_LIMIT, self._streamed)
        await self._stream_up_to(len(first.piece))
        if self._fallback is not None:
            return
        if first.close:
            await self._stream_text(first.close)
        await self._stop()
        self._fallback = self._make_fallback(None, reopen_after(first.piece))
        await self._fallback.append(self._text[len(first.piece) :])

    async def _drop_placeholder(self) -> None:
        if self._placeholder is not None:
            ts, self._placeholder = self._placeholder, None
            await self._client.chat_delete(channel=self._channel, ts=ts)


# What Slack answers a post into a channel the bot is not a member of (a slash command or shortcut
# can come from anywhere; its response_url still answers there).
OUTSIDE_ERRORS = frozenset({"not_in_channel", "channel_not_found"})


def is_outside(exc: SlackApiError) -> bool:
    """Whether Slack refused because the bot is not in the channel."""
    return exc.response.get("error") in OUTSIDE_ERRORS


def invite_hint(bot_user_id: str) -> str:
    """What to do when the bot is not in the channel."""
    who = f"<@{bot_user_id}>" if bot_user_id else "followed by my name"
    return f"I'm not a member of this channel, so I can't post here. Add me with /invite {who} and try again."


class ChannelReply:
    """A streamed reply that, where the bot is not in the channel, is sent whole when it ends (through
    the command's response_url, by SlackResponder.send_text) instead of failing."""

    def __init__(self, inner: EditedReply | NativeSlackReply | None, responder: SlackResponder) -> None:
        self._inner = inner
        self._responder = responder
        self._text = ""

    async def append(self, text: str) -> None:
        """Stream it, or gather it where streaming was refused."""
        self._text += text
        if self._inner is not None:
            try:
                await self._inner.append(text)
            except SlackApiError as exc:
                self._outside(exc)

    async def finish(self) -> None:
        """End the stream; a gathered reply is sent whole."""
        if self._inner is not None:
            try:
                await self._inner.finish()
                return
            except SlackApiError as exc:
                self._outside(exc)
        await self._responder.send_text(self._text)

    async def abandon(self) -> None:
        """Mark what was shown as cut off (a gathered reply was never shown: nothing to mark)."""
        if self._inner is not None:
            await self._inner.abandon()

    def _outside(self, exc: SlackApiError) -> None:
        if not is_outside(exc):
            raise exc
        log.info("not in channel: the streamed reply goes whole through response_url")
        self._inner = None  # its first post was refused, so nothing of it shows


NO_PRIVATE_FILES = "(Slack cannot show a file to you alone, so {filename} is not posted here.)"


class SlackResponder:
    """The engine's Responder for one Slack message, slash command or shortcut.

    In a channel the bot has not joined, Slack refuses every post (`not_in_channel`): the status
    line is skipped, answers go through the command's or shortcut's response_url, and where there is
    none the person is told to /invite the bot.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str | None,
        user_id: str,
        team_id: str = "",
        interval: float = EDIT_INTERVAL,
        native_streaming: bool = True,
        response_url: str | None = None,
        bot_user_id: str = "",
        approvals: PendingApprovals | None = None,
    ) -> None:
        self._client = client
        self._approvals = approvals
        self._bot_user_id = bot_user_id
        self._outside = False  # Slack said the bot is not in the channel
        # A slash command's response_url answers in any channel, whether or not the bot is in it.
        self._webhook = AsyncWebhookClient(response_url) if response_url else None
        self._channel = channel
        self._thread_ts = thread_ts or None
        self._user_id = user_id
        self._interval = interval
        self._placeholder_ts: str | None = None
        self._private_status_at: float | None = None  # when the last private progress line was posted
        self._team_id = team_id
        self._native = native_streaming

    async def send_text(self, text: str, *, private: bool = False) -> None:
        """Post (or, privately, post ephemerally) the text, split under Slack's limit."""
        if private:  # a progress line of a private exchange does not stay in the channel
            await self._drop_placeholder()
        for chunk in split_message(text, MESSAGE_LIMIT):
            shown = to_mrkdwn(chunk)
            if not private and self._placeholder_ts is not None:
                # The answer takes the place of the "thinking…" line.
                await self._client.chat_update(channel=self._channel, ts=self._placeholder_ts, text=shown)
                self._placeholder_ts = None
            elif private and await self._respond(shown, "ephemeral"):
                pass
            elif private:
                await self._client.chat_postEphemeral(
                    channel=self._channel, user=self._user_id, thread_ts=self._thread_ts, text=shown
                )
            elif self._outside:
                await self._respond_or_invite(shown)
            else:
                try:
                    await self._client.chat_postMessage(channel=self._channel, thread_ts=self._thread_ts, text=shown)
                except SlackApiError as exc:
                    if not is_outside(exc):
                        raise
                    self._outside = True
                    await self._respond_or_invite(shown)

    async def _respond_or_invite(self, text: str) -> None:
        """Post through the response_url; without one (or when it fails), ask to be invited."""
        if not await self._respond(text, "in_channel"):
            raise CannotPost(invite_hint(self._bot_user_id))

    async def _respond(self, text: str, response_type: str) -> bool:
        """Answer through the slash command's response_url; False when there is none or it failed."""
        if self._webhook is None:
            return False
        try:
            response = await self._webhook.send(text=text, response_type=response_type)
        except Exception:  # an unreachable or expired URL: the caller falls back to the Web API
            log.warning("response_url could not be reached", exc_info=True)
            return False
        if response.status_code != 200:
            log.warning("response_url refused the answer (HTTP %s)", response.status_code)
            return False
        return True

    def stream(self) -> ChannelReply:
        """Native streaming in threads; elsewhere (and where Slack refuses it) edits, about once a second;
        outside the bot's channels, the whole reply when it ends."""
        if self._outside:
            return ChannelReply(None, self)
        return ChannelReply(self._channel_stream(), self)

    def _channel_stream(self) -> EditedReply | NativeSlackReply:
        placeholder, self._placeholder_ts = self._placeholder_ts, None

        def edited(handle: Any, reopen: str) -> EditedReply:
            return slack_reply(
                self._client, self._channel, self._thread_ts, interval=self._interval, placeholder_ts=handle,
                reopen=reopen,
            )  # fmt: skip

        if self._native and self._thread_ts:
            return NativeSlackReply(
                self._client, self._channel, self._thread_ts, team_id=self._team_id, user_id=self._user_id,
                fallback=edited, placeholder_ts=placeholder,
            )  # fmt: skip
        return edited(placeholder, "")

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        """Upload into the thread with files_upload_v2 (only where the bot is a member). Slack has no file
        only one person sees, so a private file is not uploaded: the asker is told so, privately."""
        if private:
            await self.send_text(NO_PRIVATE_FILES.format(filename=filename), private=True)
            return
        await self._drop_placeholder()
        if self._outside:
            raise CannotPost(invite_hint(self._bot_user_id))
        try:
            await self._client.files_upload_v2(
                channel=self._channel, thread_ts=self._thread_ts, content=data, filename=filename,
                initial_comment=to_mrkdwn(caption) if caption else None,
            )  # fmt: skip
        except SlackApiError as exc:
            if not is_outside(exc):
                raise
            self._outside = True
            raise CannotPost(invite_hint(self._bot_user_id)) from None

    async def show_status(self, text: str, *, private: bool = False) -> None:
        """A placeholder message ("_thinking…_") that the streamed reply then edits into the answer;
        none where the bot is not in the channel (the answer comes whole through response_url). A private
        exchange's progress is ephemeral: a public placeholder would show the channel that someone asked."""
        if self._outside:
            return
        if private:
            await self._show_private_status(text)
            return
        try:
            if self._placeholder_ts is None:
                response = await self._client.chat_postMessage(
                    channel=self._channel, thread_ts=self._thread_ts, text=f"_{neutralise(text)}_"
                )
                self._placeholder_ts = str(response["ts"])
            else:
                await self._client.chat_update(
                    channel=self._channel, ts=self._placeholder_ts, text=f"_{neutralise(text)}_"
                )
        except SlackApiError as exc:
            if not is_outside(exc):
                raise
            self._outside = True

    async def _show_private_status(self, text: str) -> None:
        now = time.monotonic()
        if self._private_status_at is not None and now - self._private_status_at < PRIVATE_STATUS_INTERVAL:
            return
        self._private_status_at = now
        try:
            await self._client.chat_postEphemeral(
                channel=self._channel, user=self._user_id, thread_ts=self._thread_ts, text=f"_{neutralise(text)}_"
            )
        except SlackApiError as exc:  # progress is a courtesy: the answer still comes through response_url
            log.info("a private progress line was refused: %s", exc.response.get("error"))

    async def send_error(self, message: str) -> None:
        """Tell the author only (ephemeral); fall back to the thread if ephemerals are refused."""
        await self._drop_placeholder()
        try:
            await self.send_text(f":warning: {message}", private=True)
        except SlackApiError as exc:
            log.warning("ephemeral refused (%s); answering in the thread", exc.response.get("error"))
            await self.send_text(f":warning: {message}")

    async def ask_approval(self, question: str, asker_id: str, seconds: float) -> bool | None:
        """Post the question with Allow / Deny buttons in the thread; only the asker's click answers it.
        The message then says how it was answered, without its buttons."""
        if self._approvals is None:
            return False
        posted: dict[str, str] = {}

        async def post(key: str) -> None:
            result = await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, text=question, blocks=approval_blocks(question, key)
            )
            posted["ts"] = str(result["ts"])

        answer = await self._approvals.wait(asker_id, seconds, post)
        if "ts" in posted:
            said = outcome(answer, seconds)
            await self._client.chat_update(
                channel=self._channel, ts=posted["ts"], text=f"{question} ({said})", blocks=[]
            )
        return answer

    async def _drop_placeholder(self) -> None:
        if self._placeholder_ts is not None:
            ts, self._placeholder_ts = self._placeholder_ts, None
            await self._client.chat_delete(channel=self._channel, ts=ts)


APPROVAL_ACTION = "tool_approval"


def approval_blocks(question: str, key: str) -> list[dict[str, Any]]:
    """The question and its two buttons; each button's value is `<choice>:<key>`."""
    buttons = [
        {"type": "button", "action_id": f"{APPROVAL_ACTION}_{choice}", "value": f"{choice}:{key}",
         "text": {"type": "plain_text", "text": label}, **({"style": style} if style else {})}
        for choice, label, style in ((ALLOW, "Allow", "primary"), (DENY, "Deny", "danger"))
    ]  # fmt: skip
    return [
        {"type": "section", "text": {"type": "plain_text", "text": question}},
        {"type": "actions", "elements": buttons},
    ]
