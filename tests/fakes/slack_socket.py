"""Slack's Socket Mode on 127.0.0.1: apps.connections.open and the websocket it hands out.

slack-sdk's real SocketModeClient (through bolt's AsyncSocketModeHandler) connects to it. The
server greets each connection with `hello`, sends envelopes the test scripts (events_api,
slash_commands, interactive), records the acks the client sends back, and can ask the client to
reconnect (`disconnect` with reason `refresh_requested`), as Slack does every few hours. Shapes from
https://api.slack.com/apis/socket-mode.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack_api import FakeSlack, SlackCall

APP_TOKEN = "xapp-1-A1-test"
BOT_TOKEN = "xoxb-test"


class FakeSlackSocket(FakeSlack):
    """The Web API fake plus Socket Mode. Tokens other than APP_TOKEN / BOT_TOKEN are refused as Slack does."""

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[dict[str, Any]] = []  # what the client sent back, in order
        self.connections = 0  # websockets opened so far
        self.app_tokens = {APP_TOKEN}
        self.bot_tokens = {BOT_TOKEN}
        self.socket_url: str | None = None  # hand out this websocket URL instead of our own (e.g. a dead one)
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Condition()
        self._ids = itertools.count(1)
        self.app.router.add_get("/socket", self._socket)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if method == "apps.connections.open":
            self.calls.append(SlackCall(method, {}))
            if token.startswith("xoxb-"):
                return web.json_response({"ok": False, "error": "not_allowed_token_type"})
            if token not in self.app_tokens:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            ticket = next(self._ids)
            url = self.socket_url or f"ws://127.0.0.1:{self.port}/socket?ticket={ticket}"
            return web.json_response({"ok": True, "url": url})
        if method == "auth.test" and token not in self.bot_tokens:
            self.calls.append(SlackCall(method, {}))
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return await super()._api(request)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()  # answers the client's pings itself
        await socket.prepare(request)
        await socket.send_json({
            "type": "hello", "num_connections": 1,
            "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A1"},
        })  # fmt: skip
        async with self._connected:
            self.connections += 1
            self._sockets.append(socket)
            self._connected.notify_all()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
        return socket

    async def wait_for_connection(self, count: int = 1, seconds: float = 15) -> None:
        """Until `count` websockets have been opened."""
        async with self._connected:
            await asyncio.wait_for(self._connected.wait_for(lambda: self.connections >= count), seconds)

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = ""
    ) -> str:
        """Send an envelope on the newest connection; its id (the ack must carry it)."""
        envelope_id = f"env-{next(self._ids)}"
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                                    "accepts_response_payload": kind != "events_api"}  # fmt: skip
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        await self._sockets[-1].send_json(envelope)
        return envelope_id

    async def ask_to_reconnect(self) -> None:
        """What Slack sends before it recycles a connection."""
        await self._sockets[-1].send_json(
            {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "applink-fake"}}
        )

    def acked(self, envelope_id: str) -> bool:
        """Whether the client acknowledged the envelope."""
        return any(ack.get("envelope_id") == envelope_id for ack in self.acks)

    async def stop(self) -> None:
        for socket in self._sockets:
            await socket.close()
        await super().stop()
