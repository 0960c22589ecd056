"""The Slack adapter on slack-bolt's AsyncApp: mentions and DMs, thread follow-ups, slash commands.

Every event is acked at once (bolt's process_before_response=False) and answered after. One
mention arrives as an `app_mention` and a `message` event, and slow acks are redelivered: each
message is claimed once by (channel, ts) in the database, so it is answered once across restarts
and workers. HTTP mode serves /slack/events (signed requests only) and /healthz on PORT.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.approvals import PendingApprovals
from adapters.common.http_server import serve_until
from adapters.common.ttl_cache import TTLCache
from adapters.slack.assistant import AssistantPane
from adapters.slack.directory import SlackChannelAccess, SlackChannels, SlackDirectory, display_name
from adapters.slack.events import (
    UNLABELLED_USER,
    attachment_from_file,
    bot_user_of,
    decode_text,
    is_from_a_person,
    is_stale_edit,
    message_from_command,
    message_from_event,
    team_of,
)
from adapters.slack.files import SlackFiles
from adapters.slack.manifest import TRANSCRIBE_SHORTCUT
from adapters.slack.responder import APPROVAL_ACTION, EDIT_INTERVAL, SlackResponder
from adapters.slack.signature import signed_requests_only
from adapters.slack.startup import check_bot_token, open_socket_url, quiet_client_token_warning, socket_mode_logger
from adapters.web.site import add_dashboard
from bot.chat.engine import Engine
from bot.errors import ConfigError
from bot.messages import Attachment, Author, ConversationKey, IncomingMessage
from bot.settings import Settings
from storage import PlatformMessage

log = logging.getLogger(__name__)

ADMIN_CACHE_SECONDS = 300
RECENT_FILES = 20  # how far back /transcribe looks for the user's audio (files.list, newest first)
FILE_NOT_SHARED = (
    "Slack did not let me read {names} (a file shared through Slack Connect or from another workspace "
    "is visible to the bot only once it is in that conversation). Download it and upload it here again."
)


class SlackAdapter:
    """Turns Slack events into IncomingMessages for the engine and answers through SlackResponder."""

    def __init__(
        self, engine: Engine, settings: Settings, *, client: AsyncWebClient | None = None,
        edit_interval: float = EDIT_INTERVAL, native_streaming: bool = True,
    ) -> None:  # fmt: skip
        if settings.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set")
        self._engine = engine
        self._settings = settings
        self._token = settings.slack_bot_token.get_secret_value()
        self._client = client or AsyncWebClient(token=self._token, base_url=settings.slack_api_url)
        # slack-sdk's own retry handlers: 429s wait out Retry-After, connection errors and 5xx are
        # retried a couple of times. (A retried chat.postMessage may rarely post twice; Slack has
        # no idempotency key for it, and a missing answer is the worse failure.)
        self._client.retry_handlers.extend(
            [AsyncRateLimitErrorRetryHandler(max_retry_count=2), AsyncServerErrorRetryHandler(max_retry_count=2)]
        )
        self._edit_interval = edit_interval
        self._native_streaming = native_streaming
        self._admins = frozenset(a.strip() for a in settings.slack_admin_users.split(",") if a.strip())
        # Admin rights are a workspace's: cached per (team, user), never across workspaces.
        self._people: TTLCache[tuple[str, str], Author] = TTLCache(ADMIN_CACHE_SECONDS)
        self._channels = SlackChannels(self._client)
        engine.roles.serve("slack", self)
        engine.channel_access["slack"] = SlackChannelAccess(self._channels)
        self._files = SlackFiles(self._token, self._client.base_url)
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        self._signing_secret = secret
        quiet_client_token_warning()
        self.app = AsyncApp(
            client=self._client,
            signing_secret=secret,
            request_verification_enabled=secret is not None,
            process_before_response=False,
        )
        # The AI-app assistant pane (adapters/slack/assistant.py): bolt's Assistant middleware takes its events
        # before the listeners below, in Socket Mode and HTTP mode alike (both serve this app).
        self.app.assistant(AssistantPane(self, engine).middleware())
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        for spec in engine.commands:
            self.app.command(f"/{engine.commands.public_name(spec.name)}")(self._on_command)
        self.app.shortcut(TRANSCRIBE_SHORTCUT)(self._on_transcribe_shortcut)
        self.approvals = PendingApprovals()
        self.app.action(re.compile(f"^{APPROVAL_ACTION}_"))(self._on_approval)

    @property
    def channels(self) -> SlackChannels:
        """The process's caches of channels and memberships (and the patient history reader)."""
        return self._channels

    @property
    def client(self) -> AsyncWebClient:
        """The Web API client every call goes through (bolt's and Socket Mode's too)."""
        return self._client

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: dict[str, Any]) -> None:
        await self._answer(event, body, context)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: dict[str, Any]) -> None:
        bot_user = bot_user_of(context)
        if event.get("subtype") in ("message_deleted", "message_changed"):
            await self._deleted_or_edited(event, body, context)
            return
        if not is_from_a_person(event, bot_user):
            return
        text = str(event.get("text") or "")
        if event.get("channel_type") == "im" or (bot_user and f"<@{bot_user}" in text):
            await self._answer(event, body, context)
        elif event.get("thread_ts"):
            # A reply in a thread: answered without a mention only where the bot is already talking.
            team = team_of(body, context)
            key = ConversationKey("slack", team, str(event.get("channel") or ""), str(event["thread_ts"]))
            if await self._engine.knows_thread(key):
                await self._answer(event, body, context)

    async def _deleted_or_edited(
        self, event: Mapping[str, Any], body: Mapping[str, Any], context: Mapping[str, Any]
    ) -> None:
        """A deletion takes the message out of history and memory; an edit replaces its text there.

        Only storage and memory change: an edit never starts an answer. A thread's first message deleted
        while it has replies arrives as an edit to a "tombstone".
        """
        team = team_of(body, context)
        channel = str(event.get("channel") or "")
        new = event.get("message") or {}
        if event.get("subtype") == "message_deleted" or new.get("subtype") == "tombstone":
            ts = str(event.get("deleted_ts") or new.get("ts") or (event.get("previous_message") or {}).get("ts") or "")
            await self._engine.message_deleted(PlatformMessage("slack", team, channel, ts))
            return
        if new.get("bot_id") or not new.get("user"):
            return  # the bot's own edits (streaming) and other apps' messages
        text = decode_text(str(new.get("text") or ""), bot_user_of(context))
        await self._engine.message_edited(
            PlatformMessage("slack", team, channel, str(new.get("ts") or "")), str(new["user"]), text
        )

    async def _answer(self, event: dict[str, Any], body: dict[str, Any], context: dict[str, Any]) -> None:
        if not is_from_a_person(event, bot_user_of(context)):
            return
        if is_stale_edit(event, self._engine.now().timestamp()):
            return  # an edited old question: answered when it was asked
        await self._answer_once(event, body, context, claim=f"{event['channel']}:{event['ts']}")

    async def _answer_once(
        self, event: dict[str, Any], body: dict[str, Any], context: dict[str, Any], *, claim: str,
        response_url: str | None = None,
    ) -> None:  # fmt: skip
        if not await self._engine.first_delivery("slack", claim):
            return  # the other event of the same mention, or a redelivery
        message, unshared = await self.prepared(event, body, context)
        responder = self.responder(message, context, response_url=response_url)
        if unshared and (message.command is not None or not message.text.strip()):
            await responder.send_error(FILE_NOT_SHARED.format(names=", ".join(unshared)))
            return
        await self._engine.handle(message, responder)

    async def prepared(
        self, event: dict[str, Any], body: dict[str, Any], context: dict[str, Any]
    ) -> tuple[IncomingMessage, list[str]]:
        """The event as the engine's message (people named, shared files' URLs fetched, the author's
        directory), and the names of the files Slack would not give."""
        files, unshared = await self._shared_files(event.get("files") or ())
        team_id = team_of(body, context)
        event = {**event, "files": files, "text": await self._named(team_id, str(event.get("text") or ""), context)}
        return self._with_directory(await self._incoming(event, body, context)), unshared

    def responder(
        self, message: IncomingMessage, context: Mapping[str, Any], *, response_url: str | None = None
    ) -> SlackResponder:
        """The responder that answers `message` in its thread."""
        return SlackResponder(
            self._client, channel=message.channel_id, thread_ts=message.thread_id, user_id=message.author.id,
            team_id=message.team_id, interval=self._edit_interval, native_streaming=self._native_streaming,
            response_url=response_url, bot_user_id=bot_user_of(context), approvals=self.approvals,
        )  # fmt: skip

    async def _shared_files(self, files: Any) -> tuple[list[dict[str, Any]], list[str]]:
        """The event's files with their download URLs; those Slack will not give, by name.

        Slack Connect files arrive as `file_access: "check_file_info"` without `url_private`:
        files.info has it, once the bot may see the file.
        """
        readable: list[dict[str, Any]] = []
        unshared: list[str] = []
        for file in files:
            if file.get("url_private") or not file.get("id"):
                readable.append(file)
                continue
            try:
                info = (await self._client.files_info(file=str(file["id"])))["file"]
            except SlackApiError as exc:
                log.info("files.info refused %s (%s)", file["id"], exc.response.get("error"))
                info = {}
            if info.get("url_private"):
                readable.append({**file, **info})
            else:
                unshared.append(str(info.get("name") or file.get("name") or "the file"))
        return readable, unshared

    async def _named(self, team_id: str, text: str, context: Mapping[str, Any]) -> str:
        """The text with people written `<@U…>` labelled with their names, so the model reads names."""
        bot = bot_user_of(context)
        for user_id in dict.fromkeys(UNLABELLED_USER.findall(text)):
            if user_id != bot:
                name = (await self._author(team_id, user_id)).display_name
                text = text.replace(f"<@{user_id}>", f"<@{user_id}|{name}>")
        return text

    async def _incoming(
        self, event: Mapping[str, Any], body: Mapping[str, Any], context: Mapping[str, Any]
    ) -> IncomingMessage:
        team_id = team_of(body, context)
        return message_from_event(
            event,
            team_id=team_id,
            bot_user_id=bot_user_of(context),
            author=await self._author(team_id, str(event["user"]), home_team=event.get("user_team")),
            download=self._download,
            max_bytes=self._settings.max_attachment_mb * 1024 * 1024,
        )

    async def _on_command(self, ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()  # within Slack's 3 seconds; the answer follows
        # A signed command replayed within the signature's five minutes (or redelivered) runs once: claimed by
        # (team, trigger_id) like events, so an /image is not drawn and charged twice.
        once = str(body.get("trigger_id") or body.get("response_url") or "")
        if once and not await self._engine.first_delivery("slack", f"command:{body.get('team_id')}:{once}"):
            log.info("Slack command %s already handled: a replay or redelivery", body.get("command"))
            return
        spec = self._engine.commands.get(str(body["command"]).lstrip("/"))
        name = spec.name if spec is not None else str(body["command"]).lstrip("/")
        # Slash commands carry no files: /transcribe takes the user's latest audio file in the channel.
        files = await self._recent_audio(body) if name == "transcribe" else ()
        body = {**body, "text": await self._named(str(body.get("team_id") or ""), str(body.get("text") or ""), {})}
        message = self._with_directory(
            message_from_command(
                body, name, author=await self._author(str(body["team_id"]), str(body["user_id"])), attachments=files
            )
        )
        responder = SlackResponder(
            self._client, channel=message.channel_id, thread_ts=None, user_id=message.author.id,
            interval=self._edit_interval, response_url=body.get("response_url"), approvals=self.approvals,
        )  # fmt: skip
        await self._engine.handle(message, responder)

    def _with_directory(self, message: IncomingMessage) -> IncomingMessage:
        """The message, able to tell /search what its author may see."""
        directory = SlackDirectory(self._channels, message.author.id, message.channel_id)
        return replace(message, platform_directory=directory)

    async def _on_approval(self, ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        """A click on a tool approval's button: it answers the question only when the asker clicked."""
        await ack()
        action = (body.get("actions") or [{}])[0]
        choice, _, key = str(action.get("value", "")).partition(":")
        user = (body.get("user") or {}).get("id", "")
        if not self.approvals.answer(key, user, choice):
            log.info("a tool approval click by %s was not the asker's, or came too late", user)

    async def _on_transcribe_shortcut(self, ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        """The "Transcribe" message shortcut: transcribe the files of the message it was used on."""
        await ack()
        source = body.get("message") or {}
        event = {
            **source,
            "channel": body["channel"]["id"],
            "user": body["user"]["id"],
            "text": "/transcribe",
            "thread_ts": source.get("thread_ts") or source.get("ts"),
        }
        team = {"team_id": (body.get("team") or {}).get("id", "")}
        # The shortcut's response_url answers where the bot is not a member of the channel.
        await self._answer_once(
            event, team, {"bot_user_id": ""}, claim=f"shortcut:{body.get('trigger_id')}",
            response_url=body.get("response_url"),
        )  # fmt: skip

    async def _recent_audio(self, body: Mapping[str, Any]) -> tuple[Attachment, ...]:
        """The user's most recent audio or video file in this channel in the last day, if any."""
        try:
            listing = await self._client.files_list(
                channel=str(body["channel_id"]), user=str(body["user_id"]), ts_from=str(int(time.time()) - 86_400),
                count=RECENT_FILES,
            )  # fmt: skip
        except Exception:
            log.warning("files.list failed; /transcribe has no recent file", exc_info=True)
            return ()
        for file in listing.get("files") or ():
            kind = str(file.get("mimetype") or "")
            if kind.startswith(("audio/", "video/")):
                readable, _ = await self._shared_files([file])
                cap = self._settings.max_attachment_mb * 1024 * 1024
                return tuple(attachment_from_file(f, self._download, cap) for f in readable)
        return ()

    async def _author(self, team_id: str, user_id: str, *, home_team: Any = None) -> Author:
        """Name and admin rights from users.info (cached a few minutes per team and user), or SLACK_ADMIN_USERS.

        A person from another workspace (Slack Connect: their home team is not this one, or Slack calls them a
        stranger) is never an admin here, whatever their own workspace made them.
        """
        cached = self._people.get((team_id, user_id))
        if cached is not None:
            return cached
        external = bool(home_team) and str(home_team) != team_id
        try:
            user = (await self._client.users_info(user=user_id))["user"]
            name = display_name(user, user_id)
            admin = bool(user.get("is_admin") or user.get("is_owner"))
            home = user.get("team_id")
            external = external or bool(user.get("is_stranger")) or (bool(home) and str(home) != team_id)
        except Exception:
            log.warning("users.info failed for %s; treating as a regular member", user_id, exc_info=True)
            name, admin = user_id, False
        admin = (admin or user_id in self._admins) and not external
        author = Author(id=user_id, display_name=str(name), is_admin=admin)
        self._people.put((team_id, user_id), author)
        return author

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """The dashboard's check, by the rule and the cache the chat uses for the author of a message."""
        return (await self._author(team_id, user_id)).is_admin

    async def _download(self, url: str, max_bytes: int) -> bytes:
        """A file's bytes from url_private: the token only to Slack's file hosts, the cap while streaming."""
        return await self._files.download(url, max_bytes)

    def web_app(self) -> web.Application:
        """The HTTP-mode application: /slack/events (signed) and /healthz."""
        if self._signing_secret is None:
            raise ConfigError("Slack HTTP mode needs SLACK_SIGNING_SECRET: requests are verified with it")
        app = self.app.web_app(path="/slack/events")
        app.middlewares.append(
            signed_requests_only(
                self._signing_secret, "/slack/events", body_seconds=self._settings.request_body_seconds
            )
        )
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            checks = await self._engine.health()
        except Exception as exc:
            return web.json_response({"ok": False, "database": type(exc).__name__}, status=503)
        return web.json_response({"ok": True, **checks})


async def run_slack(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Serve Slack until `stop`: Socket Mode with SLACK_APP_TOKEN, else HTTP mode on PORT.

    The tokens are checked first (a refused one is a ConfigError naming it); while Slack is
    unreachable the start is retried with backoff, and `stop` ends it at any moment.
    """
    adapter = SlackAdapter(engine, settings)
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise ConfigError("Slack needs SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)")
    if not await check_bot_token(adapter.client, stop):
        return
    if settings.slack_app_token is not None:
        await _serve_socket_mode(adapter, settings.slack_app_token.get_secret_value(), stop)
        return
    app = add_dashboard(adapter.web_app(), engine)
    await serve_until(
        app, settings.host, settings.port, stop, serving="Slack: HTTP mode (/slack/events, /healthz, /dashboard)"
    )


async def _serve_socket_mode(adapter: SlackAdapter, app_token: str, stop: asyncio.Event) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    url = await open_socket_url(adapter.client, app_token, stop)
    if url is None:
        return
    handler = AsyncSocketModeHandler(adapter.app, app_token, logger=socket_mode_logger())
    handler.client.wss_uri = url  # the URL just checked: connect() uses it instead of asking again
    # connect() keeps retrying while the websocket cannot be reached: never awaited before `stop`.
    connecting = asyncio.create_task(handler.connect_async())  # type: ignore[no-untyped-call]
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if connecting.done():
            connecting.result()
            log.info("Slack: connected in Socket Mode")
            await stop.wait()
    finally:
        stopping.cancel()
        connecting.cancel()
        await handler.close_async()  # type: ignore[no-untyped-call]
