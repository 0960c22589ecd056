"""Answering on Slack: messages in the thread, edit-based streaming at most once a second,
long text split under Slack's limit, ephemeral private replies, files through files_upload_v2."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_markdown import to_mrkdwn
from adapters.text_split import split_chunks, split_message

log = logging.getLogger(__name__)

# Slack truncates a message's text at 40,000 characters but renders long ones poorly; its own
# guidance is to keep messages short. 3,500 leaves room for the fence repairs of the splitter.
MESSAGE_LIMIT = 3_500
# chat.update is Tier 3 (~50/min per workspace; in practice about one per second per message).
EDIT_INTERVAL = 1.0


class SlackReplyStream:
    """One reply that grows: posted at the first piece, then edited at most once per interval."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str | None,
        *,
        interval: float = EDIT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        placeholder_ts: str | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._interval = interval
        self._clock = clock
        self._text = ""
        self._sent = ""  # what the current message shows
        self._ts = placeholder_ts  # the message being edited (a "thinking…" placeholder at first)
        self._done_chars = 0  # text already finalized in earlier messages
        self._reopen = ""  # the code fence the current message reopens
        self._last_edit = float("-inf")
        self.edits = 0

    async def append(self, text: str) -> None:
        """Add text; push it to Slack when the edit interval allows."""
        self._text += text
        if self._clock() - self._last_edit >= self._interval:
            await self._push(final=False)

    async def finish(self) -> None:
        """Show the whole reply, split into as many messages as it needs."""
        await self._push(final=True)

    async def abandon(self) -> None:
        """Mark what was shown as cut off (and clear a placeholder nothing replaced)."""
        if self._ts is not None:
            self._text += " _[reply interrupted]_" if self._text else "_(no answer: see the message below)_"
            await self._push(final=True)

    async def _push(self, *, final: bool) -> None:
        pending = self._text[self._done_chars :]
        if not pending:
            return
        chunks = split_chunks(pending, MESSAGE_LIMIT, self._reopen)
        # Every chunk but the last is complete: it goes out for good and the next one starts a new
        # message, reopening a code block the split cut through. The last stays editable.
        for chunk, following in itertools.pairwise(chunks):
            await self._show(chunk.text)
            self._done_chars += len(chunk.piece)
            self._reopen = following.reopen
            self._ts, self._sent = None, ""
        await self._show(chunks[-1].text)
        self._last_edit = self._clock()

    async def _show(self, text: str) -> None:
        if text == self._sent:
            return
        shown = to_mrkdwn(text)
        if self._ts is None:
            response = await self._client.chat_postMessage(channel=self._channel, thread_ts=self._thread_ts, text=shown)
            self._ts = str(response["ts"])
        else:
            await self._client.chat_update(channel=self._channel, ts=self._ts, text=shown)
            self.edits += 1
        self._sent = text


class SlackResponder:
    """The engine's Responder for one Slack message or slash command."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str | None,
        user_id: str,
        interval: float = EDIT_INTERVAL,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts or None
        self._user_id = user_id
        self._interval = interval
        self._placeholder_ts: str | None = None

    async def send_text(self, text: str, *, private: bool = False) -> None:
        """Post (or, privately, post ephemerally) the text, split under Slack's limit."""
        for chunk in split_message(text, MESSAGE_LIMIT):
            shown = to_mrkdwn(chunk)
            if not private and self._placeholder_ts is not None:
                # The answer takes the place of the "thinking…" line.
                await self._client.chat_update(channel=self._channel, ts=self._placeholder_ts, text=shown)
                self._placeholder_ts = None
            elif private:
                await self._client.chat_postEphemeral(
                    channel=self._channel, user=self._user_id, thread_ts=self._thread_ts, text=shown
                )
            else:
                await self._client.chat_postMessage(channel=self._channel, thread_ts=self._thread_ts, text=shown)

    def stream(self) -> SlackReplyStream:
        """A reply streamed by editing one message (Slack's chat.update, about once a second)."""
        placeholder, self._placeholder_ts = self._placeholder_ts, None
        return SlackReplyStream(
            self._client, self._channel, self._thread_ts, interval=self._interval, placeholder_ts=placeholder
        )

    async def send_file(self, data: bytes, filename: str, content_type: str, *, caption: str = "") -> None:
        """Upload into the thread with files_upload_v2."""
        await self._drop_placeholder()
        await self._client.files_upload_v2(
            channel=self._channel, thread_ts=self._thread_ts, content=data, filename=filename,
            initial_comment=caption or None,
        )  # fmt: skip

    async def show_status(self, text: str) -> None:
        """A placeholder message ("_thinking…_") that the streamed reply then edits into the answer."""
        if self._placeholder_ts is None:
            response = await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, text=f"_{text}_"
            )
            self._placeholder_ts = str(response["ts"])
        else:
            await self._client.chat_update(channel=self._channel, ts=self._placeholder_ts, text=f"_{text}_")

    async def send_error(self, message: str) -> None:
        """Tell the author only (ephemeral); fall back to the thread if ephemerals are refused."""
        await self._drop_placeholder()
        try:
            await self.send_text(f":warning: {message}", private=True)
        except SlackApiError as exc:
            log.warning("ephemeral refused (%s); answering in the thread", exc.response.get("error"))
            await self.send_text(f":warning: {message}")

    async def _drop_placeholder(self) -> None:
        if self._placeholder_ts is not None:
            ts, self._placeholder_ts = self._placeholder_ts, None
            await self._client.chat_delete(channel=self._channel, ts=ts)
