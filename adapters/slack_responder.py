"""Answering on Slack: messages in the thread, edit-based streaming at most once a second,
long text split under Slack's limit, ephemeral private replies, files through files_upload_v2."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.edited_reply import EditedReply
from adapters.slack_markdown import to_mrkdwn
from adapters.text_split import split_message

log = logging.getLogger(__name__)

# Slack truncates a message's text at 40,000 characters but renders long ones poorly; its own
# guidance is to keep messages short. 3,500 leaves room for the fence repairs of the splitter.
MESSAGE_LIMIT = 3_500
# chat.update is Tier 3 (~50/min per workspace; in practice about one per second per message).
EDIT_INTERVAL = 1.0


def slack_reply(
    client: AsyncWebClient,
    channel: str,
    thread_ts: str | None,
    *,
    interval: float = EDIT_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    placeholder_ts: str | None = None,
) -> EditedReply:
    """A reply streamed into one Slack message by chat.update (continued in new messages when long)."""

    async def post(text: str) -> str:
        response = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=to_mrkdwn(text))
        return str(response["ts"])

    async def edit(ts: str, text: str) -> None:
        await client.chat_update(channel=channel, ts=ts, text=to_mrkdwn(text))

    return EditedReply(
        post, edit, limit=MESSAGE_LIMIT, interval=interval, clock=clock, interrupted=" _[reply interrupted]_",
        handle=placeholder_ts,
    )  # fmt: skip


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

    def stream(self) -> EditedReply:
        """A reply streamed by editing one message (Slack's chat.update, about once a second)."""
        placeholder, self._placeholder_ts = self._placeholder_ts, None
        return slack_reply(
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
