"""A Discord REST API on 127.0.0.1 that records calls; discord.py's real HTTP client talks to it.

Most tests build real discord.py objects from raw gateway payload dicts through the client's own
ConnectionState, as the gateway would. Where a command connects to the gateway itself (an operator's
`python -m bot digests run`), `gateway_url` names a FakeGateway (tests/fakes/discord_gateway.py): a
websocket that sends READY and GUILD_CREATE, answered by `GET /gateway/bot`.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
from aiohttp import web

from tests.fakes.loopback import LoopbackServer

BOT_ID = "1000"
GUILD, CHANNEL, ADMIN_ROLE, BOSS_ROLE = "1", "2", "3", "4"  # the guild, #general, "bot-admins", "managers"
READER_ROLE = "5"  # "readers": may read message history
MANAGE_GUILD, VIEW_CHANNEL, READ_MESSAGE_HISTORY = 1 << 5, 1 << 10, 1 << 16
BOT_USER = {"id": BOT_ID, "username": "teambot", "discriminator": "0", "global_name": None, "avatar": None, "bot": True}


@dataclass
class DiscordCall:
    """One REST call."""

    method: str
    path: str
    json: dict[str, Any] | None
    at: float = field(default_factory=time.perf_counter)  # when it arrived (benchmarks time the adapters by it)


def user(user_id: str, name: str) -> dict[str, Any]:
    """A user payload."""
    return {"id": user_id, "username": name, "discriminator": "0", "global_name": name, "avatar": None}


def message_payload(
    message_id: str, channel_id: str, content: str, *, author: dict[str, Any] = BOT_USER, guild_id: str | None = None,
    mentions: list[dict[str, Any]] | None = None, member: dict[str, Any] | None = None,
    attachments: list[dict[str, Any]] | None = None, mention_everyone: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A message payload as the gateway or REST API sends it."""
    data: dict[str, Any] = {
        "id": message_id, "channel_id": channel_id, "content": content, "author": author,
        "timestamp": datetime.now(UTC).isoformat(), "edited_timestamp": None, "tts": False,
        "mention_everyone": mention_everyone, "mentions": mentions or [], "mention_roles": [],
        "attachments": attachments or [], "embeds": [], "pinned": False, "type": 0, "flags": 0,
    }  # fmt: skip
    if guild_id is not None:
        data["guild_id"] = guild_id
    if member is not None:
        data["member"] = member
    return data


def _role(role_id: str, name: str, permissions: int, position: int) -> dict[str, Any]:
    return {"id": role_id, "name": name, "permissions": str(permissions), "position": position, "color": 0,
            "hoist": False, "managed": False, "mentionable": False}  # fmt: skip


GUILD_PAYLOAD = {
    "id": GUILD, "name": "Team", "owner_id": "99", "features": [], "emojis": [], "stickers": [],
    "roles": [_role(GUILD, "@everyone", VIEW_CHANNEL, 0), _role(ADMIN_ROLE, "bot-admins", 0, 1),
              _role(BOSS_ROLE, "managers", MANAGE_GUILD, 2), _role(READER_ROLE, "readers", READ_MESSAGE_HISTORY, 3)],
    "channels": [{"id": CHANNEL, "type": 0, "name": "general", "guild_id": GUILD, "position": 0,
                  "permission_overwrites": []}],
    "members": [], "member_count": 3,
}  # fmt: skip


async def logged_in_client(intents: discord.Intents) -> discord.Client:
    """A discord.py client logged in over REST (point discord.http.Route.BASE at the fake first), with the
    team's guild in its cache as the gateway's GUILD_CREATE would put it."""
    client = discord.Client(intents=intents)
    await client.login("test.token.value")
    client._connection._add_guild_from_data(GUILD_PAYLOAD)  # type: ignore[arg-type]
    return client


def _failure(status: int) -> web.Response:
    """A 429 as Discord sends it (retry_after in the body and headers), or another error status."""
    if status == 429:
        body = {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}
        response = _json(body, status=429)
        # Discord's 429s pass through its proxy: discord.py takes one without `Via` for a Cloudflare ban.
        response.headers.update({"Retry-After": "0.05", "X-RateLimit-Scope": "user", "Via": "1.1 google"})
        return response
    return _json({"message": "failure", "code": 0}, status=status)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly "application/json".
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


class FakeDiscord(LoopbackServer):
    """Answers the REST calls the adapter makes and keeps what each message finally says."""

    def __init__(self) -> None:
        self.calls: list[DiscordCall] = []
        self.messages: dict[str, str] = {}  # message id -> content now
        self.files: dict[str, bytes] = {}  # what /attachments/{name} serves (the CDN)
        self.uploads: list[str] = []  # filenames of files sent with messages
        # (method, path fragment) -> HTTP statuses to answer the next matching calls with (429: rate limited)
        self.failures: dict[tuple[str, str], list[int]] = {}
        self.members: dict[str, list[str]] = {}  # user id -> role ids (GET /guilds/{id}/members/{user}; absent: 404)
        self.dm_channels: dict[str, str] = {}  # DM channel id -> the user it is with
        self.no_dms: set[str] = set()  # users who do not accept DMs from server members (Discord's 50007)
        self.channel_of: dict[str, str] = {}  # message id -> the channel it was posted in
        # Interaction token -> the deferred response's visibility while it is still "thinking…" (loading).
        self.loading: dict[str, bool] = {}
        self.ephemeral: dict[str, bool] = {}  # follow-up message id -> whether only its asker sees it
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel or thread id -> its messages, oldest first
        self.archived: dict[str, list[dict[str, Any]]] = {}  # channel id -> its archived public threads
        self.gateway_url: str | None = None  # GET /gateway/bot's url (a FakeGateway); None: 404
        self._ids = itertools.count(5000)
        super().__init__(web.Application())
        self.app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        self.app.router.add_get("/attachments/{name}", self._attachment)

    async def _attachment(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["name"]], content_type="application/octet-stream")

    @property
    def base(self) -> str:
        """What discord.http.Route.BASE becomes."""
        return f"http://127.0.0.1:{self.port}/api/v10"

    def texts_in(self, channel_id: str) -> list[str]:
        """What the messages posted in a channel (or a DM channel) say now, in order."""
        return [text for message_id, text in self.messages.items() if self.channel_of.get(message_id) == channel_id]

    def dm_texts(self, user_id: str) -> list[str]:
        """What the bot sent `user_id` by DM."""
        return [text for channel, who in self.dm_channels.items() if who == user_id for text in self.texts_in(channel)]

    def add_history(self, channel_id: str, when: datetime, content: str, author: dict[str, Any],
                    *, kind: int = 0) -> str:  # fmt: skip
        """A message in a channel's (or thread's) history, its id the snowflake of `when`; returns the id."""
        message_id = str(discord.utils.time_snowflake(when) + len(self.calls) + next(self._ids))
        payload = message_payload(message_id, channel_id, content, author=author, guild_id=GUILD)
        payload.update(timestamp=when.isoformat(), type=kind)
        self.history.setdefault(channel_id, []).append(payload)
        return message_id

    def add_archived_thread(self, channel_id: str, archived_at: datetime, name: str = "old thread") -> str:
        """A public thread of the channel, archived at `archived_at` (its messages: add_history with its id)."""
        thread_id = str(discord.utils.time_snowflake(archived_at - timedelta(days=1)) + next(self._ids))
        self.archived.setdefault(channel_id, []).append({
            "id": thread_id, "type": 11, "guild_id": GUILD, "parent_id": channel_id, "owner_id": "21", "name": name,
            "thread_metadata": {"archived": True, "auto_archive_duration": 1440, "locked": False,
                                "archive_timestamp": archived_at.isoformat()},
            "message_count": 1, "member_count": 1, "rate_limit_per_user": 0, "total_message_sent": 1,
        })  # fmt: skip
        return thread_id

    def _archived_threads(self, channel_id: str, query: Any) -> web.Response:
        """GET /channels/{id}/threads/archived/public: `limit` threads archived `before` an ISO time, the most
        recently archived first, as `threads`, `members` (the bot's memberships: none) and `has_more`."""
        limit = int(query.get("limit", 50))
        before = datetime.fromisoformat(query["before"]) if "before" in query else None
        threads = sorted(self.archived.get(channel_id, []), key=lambda t: t["thread_metadata"]["archive_timestamp"],
                         reverse=True)  # fmt: skip
        found = [
            t
            for t in threads
            if before is None or datetime.fromisoformat(t["thread_metadata"]["archive_timestamp"]) < before
        ]
        return _json({"threads": found[:limit], "members": [], "has_more": len(found) > limit})

    def _messages(self, channel_id: str, query: Any) -> web.Response:
        """GET /channels/{id}/messages: `limit` (at most 100) after `after` or before `before`, newest first."""
        limit = int(query.get("limit", 50))
        if limit > 100:
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        found = sorted(self.history.get(channel_id, []), key=lambda m: int(m["id"]))
        if "after" in query:
            found = [m for m in found if int(m["id"]) > int(query["after"])][:limit]
        else:
            found = [m for m in found if "before" not in query or int(m["id"]) < int(query["before"])][-limit:]
        return _json(list(reversed(found)))

    def called(self, method: str, fragment: str) -> list[DiscordCall]:
        """Calls with this method whose path contains `fragment`."""
        return [c for c in self.calls if c.method == method and fragment in c.path]

    async def _api(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.content_type == "application/json":
            body = await request.json()
        elif request.content_type.startswith("multipart/"):
            body = {"multipart": True}
            async for part in await request.multipart():
                if getattr(part, "name", None) == "payload_json":
                    body.update(json.loads(await part.text()))  # type: ignore[union-attr]
                elif getattr(part, "filename", None):
                    self.uploads.append(str(part.filename))  # type: ignore[union-attr]
                    await part.read()  # type: ignore[union-attr]
        path = "/" + request.match_info["tail"]
        self.calls.append(DiscordCall(request.method, path, body))
        for (method, fragment), statuses in self.failures.items():
            if statuses and request.method == method and fragment in path:
                return _failure(statuses.pop(0))
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return _json(BOT_USER)
        if path == "/gateway/bot" and self.gateway_url is not None:  # one shard, where to connect
            return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}})  # fmt: skip
        if path == "/users/@me/guilds":
            return _json([{"id": GUILD, "name": GUILD_PAYLOAD["name"], "icon": None, "owner": False,
                           "permissions": "0", "features": []}])  # fmt: skip
        if path == "/oauth2/applications/@me":
            return _json({"id": BOT_ID, "name": "teambot", "icon": None, "description": "", "bot_public": True,
                          "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 0,
                          "owner": user("99", "owner")})  # fmt: skip
        if request.method == "GET" and parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members":
            if parts[3] not in self.members:
                return _json({"message": "Unknown Member", "code": 10007}, status=404)
            return _json({"user": user(parts[3], f"user{parts[3]}"), "roles": self.members[parts[3]], "flags": 0,
                          "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False})  # fmt: skip
        if request.method == "POST" and path == "/users/@me/channels":  # open (or find) the DM with a user
            recipient = str((body or {}).get("recipient_id"))
            channel_id = f"9{recipient}"
            self.dm_channels[channel_id] = recipient
            return _json({"id": channel_id, "type": 1, "recipients": [user(recipient, f"user{recipient}")],
                          "last_message_id": None})  # fmt: skip
        if request.method == "POST" and parts[0] == "channels" and self.dm_channels.get(parts[1]) in self.no_dms:
            return _json({"message": "Cannot send messages to this user", "code": 50007}, status=403)
        if request.method == "GET" and parts[0] == "channels" and parts[2:] == ["threads", "archived", "public"]:
            return self._archived_threads(parts[1], request.query)
        if request.method == "GET" and parts[0] == "channels" and parts[2:] == ["messages"]:
            return self._messages(parts[1], request.query)
        if parts[0] == "channels" and parts[-1] == "typing":
            return web.Response(status=204)
        if parts[-1] == "callback":  # with_response=true: the callback answers with what it did
            flags = int(((body or {}).get("data") or {}).get("flags") or 0)
            if (body or {}).get("type") == 5:  # deferred: "thinking…" until the first follow-up or an edit
                self.loading[parts[2]] = bool(flags & 64)
            return _json({"interaction": {"id": parts[1], "type": 2, "response_message_loading": True,
                                          "response_message_ephemeral": bool(flags & 64)}})  # fmt: skip
        if parts[0] == "channels" and parts[-1] == "threads":
            thread_id = str(next(self._ids))
            return _json({
                "id": thread_id, "type": 11, "guild_id": "1", "parent_id": parts[1], "owner_id": BOT_ID,
                "name": (body or {}).get("name", "t"), "thread_metadata": {"archived": False,
                "auto_archive_duration": 1440, "archive_timestamp": datetime.now(UTC).isoformat(), "locked": False},
                "message_count": 0, "member_count": 1, "rate_limit_per_user": 0,
            })  # fmt: skip
        if request.method == "PUT" and parts[-1] == "commands":  # bulk overwrite of application commands
            listed: Any = body if isinstance(body, list) else []
            return _json([{**c, "id": str(next(self._ids)), "application_id": BOT_ID, "version": "1"} for c in listed])
        content = str((body or {}).get("content") or "")
        if request.method == "POST" and (parts[0] == "channels" or parts[0] == "webhooks"):
            message_id = str(next(self._ids))
            if parts[0] == "webhooks":
                # The first follow-up to a deferred response resolves it and keeps the defer's visibility,
                # whatever its own flags say (discord-api-docs #2866, #3466).
                flags = int((body or {}).get("flags") or 0)
                self.ephemeral[message_id] = self.loading.pop(parts[2], bool(flags & 64))
            self.messages[message_id] = content
            channel = parts[1] if parts[0] == "channels" else "2"
            self.channel_of[message_id] = parts[1] if parts[0] == "channels" else f"webhook:{parts[-1]}"
            return _json(message_payload(message_id, channel, content))
        if request.method == "PATCH":
            message_id = parts[-1]
            if parts[0] == "webhooks" and message_id == "@original":  # the deferred response, resolved
                message_id = str(next(self._ids))
                self.ephemeral[message_id] = self.loading.pop(parts[2], False)
            self.messages[message_id] = content
            channel = parts[1] if parts[0] == "channels" else "2"
            return _json(message_payload(message_id, channel, content))
        return _json({"message": f"not faked: {request.method} {path}"}, status=404)
