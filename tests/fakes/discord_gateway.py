"""A Discord gateway on 127.0.0.1 (an aiohttp websocket) that discord.py's real client connects to.

It speaks the gateway's JSON text frames (discord.py asks for zlib-stream but inflates binary frames only):
HELLO (op 10) on connect; IDENTIFY (op 2) → READY (op 0, the guild unavailable, `shard` echoed) then
GUILD_CREATE with the fake REST API's guild, its channels, roles and the bot's own member; a heartbeat
(op 1) → HEARTBEAT_ACK (op 11). `FakeDiscord.gateway_url` points `GET /gateway/bot` here.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_api import BOT_ID, BOT_USER, GUILD, GUILD_PAYLOAD, READER_ROLE
from tests.fakes.loopback import LoopbackServer

HELLO, IDENTIFY, HEARTBEAT, DISPATCH, HEARTBEAT_ACK = 10, 2, 1, 0, 11
BOT_MEMBER = {"user": BOT_USER, "roles": [READER_ROLE], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False,
              "mute": False, "flags": 0}  # fmt: skip  # the bot reads history through the "readers" role


class FakeGateway(LoopbackServer):
    """Serves one guild to each client that identifies; records what the clients did."""

    def __init__(self) -> None:
        self.identified: list[dict[str, Any]] = []  # IDENTIFY payloads' `d`, in order
        self.connected = 0  # websockets opened
        self.closed = 0  # websockets that ended (the client closed them, or the fake did)
        self.ready = True  # False: HELLO and heartbeats only, never READY (a gateway that hangs)
        self._sequence = 0
        super().__init__(web.Application())
        self.app.router.add_get("/", self._socket)

    @property
    def websocket_url(self) -> str:
        """What `GET /gateway/bot` answers (FakeDiscord.gateway_url)."""
        return f"ws://127.0.0.1:{self.port}/"

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.connected += 1
        try:
            await self._send(socket, HELLO, {"heartbeat_interval": 41_250})
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    break
                payload = json.loads(frame.data)
                if payload["op"] == HEARTBEAT:
                    await self._send(socket, HEARTBEAT_ACK, None)
                elif payload["op"] == IDENTIFY:
                    self.identified.append(payload["d"])
                    if self.ready:
                        await self._ready(socket, payload["d"])
        finally:
            self.closed += 1
        return socket

    async def _ready(self, socket: web.WebSocketResponse, identify: dict[str, Any]) -> None:
        await self._send(socket, DISPATCH, {
            "v": 10, "user": BOT_USER, "guilds": [{"id": GUILD, "unavailable": True}], "session_id": "session-1",
            "resume_gateway_url": self.websocket_url, "shard": identify.get("shard", [0, 1]),
            "application": {"id": BOT_ID, "flags": 0}, "private_channels": [], "relationships": [],
        }, "READY")  # fmt: skip
        guild = {**GUILD_PAYLOAD, "members": [BOT_MEMBER], "unavailable": False, "large": False, "threads": [],
                 "joined_at": "2026-01-01T00:00:00+00:00", "voice_states": [], "presences": []}  # fmt: skip
        await self._send(socket, DISPATCH, guild, "GUILD_CREATE")

    async def _send(self, socket: web.WebSocketResponse, op: int, data: Any, event: str | None = None) -> None:
        frame: dict[str, Any] = {"op": op, "d": data, "s": None, "t": event}
        if op == DISPATCH:
            self._sequence += 1
            frame["s"] = self._sequence
        await socket.send_str(json.dumps(frame))
