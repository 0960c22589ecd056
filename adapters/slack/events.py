"""Slack event payloads (dicts from the wire) into IncomingMessage, in one place."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.commands import parse_command_line
from bot.messages import Attachment, Author, Command, IncomingMessage

# The message subtypes a person writes (https://api.slack.com/events/message#subtypes): a plain message
# has none; a file with a comment, a thread reply also sent to the channel (it comes with no plain
# twin) and /me. Everything else (edits, deletions, joins, topics, pins, reminders, bots) is Slack's
# own notice, even when it quotes the bot's mention, and is never answered.
ANSWERED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})
# Slack re-sends `app_mention` when someone edits a message that mentions the bot (the event then
# carries `edited`). A message is claimed once by (channel, ts), but claims are forgotten after a day
# (bot/chat/engine.py DELIVERY_MEMORY): an edit is answered only while its message is this recent,
# so editing an old question never starts a second answer.
EDIT_ANSWER_WINDOW = 3_600.0
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
UNLABELLED_USER = re.compile(r"<@([UW][A-Z0-9]+)>")
_CHANNEL = re.compile(r"<#(C[A-Z0-9]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)[^>]*>")

Downloader = Callable[[str, int], Awaitable[bytes]]


def decode_text(text: str, bot_user_id: str, *, keep_channels: bool = False) -> str:
    """Slack markup to plain text: the bot's mention removed, other mentions and links readable.

    `keep_channels` leaves channel mentions as `<#C…|name>`, for commands that take a channel.
    """
    text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text) if bot_user_id else text
    text = _USER.sub(lambda m: f"@{m.group(2) or m.group(1)}", text)
    if not keep_channels:
        text = _CHANNEL.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def command_from_text(raw: str, bot_user_id: str = "") -> Command | None:
    """The command a Slack text spells: its text as people read it (for the model), its words with
    channel references kept as `<#C…|name>` (for commands that take a channel)."""
    kept = parse_command_line(decode_text(raw, bot_user_id, keep_channels=True))
    readable = parse_command_line(decode_text(raw, bot_user_id))
    return replace(kept, text=readable.text) if kept is not None and readable is not None else kept


def team_of(body: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The team an event belongs to: the body's team_id, else bolt's context's ("" when neither has one)."""
    return str(body.get("team_id") or context.get("team_id") or "")


def bot_user_of(context: Mapping[str, Any]) -> str:
    """The bot's own user id, from bolt's context ("" before authorization has set it)."""
    return str(context.get("bot_user_id") or "")


def is_from_a_person(event: Mapping[str, Any], bot_user_id: str) -> bool:
    """True for what a person wrote; False for bots (ours included) and Slack's notices and edits."""
    if event.get("bot_id") or event.get("subtype") not in ANSWERED_SUBTYPES:
        return False
    return bool(event.get("user")) and event.get("user") != bot_user_id


def is_stale_edit(event: Mapping[str, Any], now: float) -> bool:
    """An edit re-sent as a mention, of a message older than EDIT_ANSWER_WINDOW (never answered again)."""
    if not event.get("edited"):
        return False
    try:
        return now - float(event["ts"]) > EDIT_ANSWER_WINDOW
    except (KeyError, ValueError):
        return True


def message_from_event(
    event: Mapping[str, Any], *, team_id: str, bot_user_id: str, author: Author, download: Downloader, max_bytes: int
) -> IncomingMessage:
    """An app_mention or message event as an IncomingMessage; the thread is the conversation.

    A mention outside a thread starts a thread on the mentioned message; a DM without a thread is
    one conversation per DM channel.
    """
    channel = str(event["channel"])
    ts = str(event["ts"])
    is_direct = event.get("channel_type") == "im"
    thread = str(event.get("thread_ts") or ("" if is_direct else ts))
    raw = str(event.get("text") or "")
    text = decode_text(raw, bot_user_id)
    return IncomingMessage(
        platform="slack",
        team_id=team_id,
        channel_id=channel,
        thread_id=thread,
        message_id=ts,
        author=author,
        text=text,
        is_direct=is_direct,
        command=command_from_text(raw, bot_user_id) if text.startswith("/") else None,
        attachments=tuple(
            attachment_from_file(f, download, max_bytes) for f in event.get("files") or () if f.get("url_private")
        ),
        created_at=datetime.fromtimestamp(float(ts), UTC),
    )


def message_from_command(
    body: Mapping[str, Any], name: str, *, author: Author, attachments: tuple[Attachment, ...] = ()
) -> IncomingMessage:
    """A slash command's form body as an IncomingMessage (channel-level: commands have no thread).

    Slack HTML-escapes the text (`&amp;`, `&lt;`, `&gt;`) and writes people and channels as
    `<@U…|name>` / `<#C…|name>`: the engine gets them decoded. `name` is the engine's command name
    (the adapter has taken off any COMMAND_PREFIX).
    """
    raw = f"/{name} {body.get('text') or ''}".strip()
    return IncomingMessage(
        platform="slack",
        team_id=str(body["team_id"]),
        channel_id=str(body["channel_id"]),
        author=author,
        text=decode_text(raw, ""),
        message_id=str(body.get("trigger_id") or ""),
        is_direct=str(body.get("channel_name")) == "directmessage",
        command=command_from_text(raw),
        attachments=attachments,
    )


def attachment_from_file(file: Mapping[str, Any], download: Downloader, max_bytes: int) -> Attachment:
    """A Slack file object as an Attachment that downloads url_private on read()."""
    url = str(file["url_private"])

    async def read() -> bytes:
        return await download(url, max_bytes)

    return Attachment(
        name=str(file.get("name") or "file"),
        content_type=str(file.get("mimetype") or "application/octet-stream"),
        size=int(file.get("size") or 0),
        read=read,
    )
