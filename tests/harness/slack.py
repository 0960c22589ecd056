"""The Slack harness: the fake Slack Web API, the Bolt app fed signed events, and the engine."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.adapter import SlackAdapter
from bot.app import open_engine
from bot.chat.engine import Engine
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_api import BOT_USER, FakeSlack

SECRET = "test-signing-secret"


TRIGGERS = itertools.count(1)


@dataclass
class Harness:
    api: FakeSlack
    engine: Engine
    port: int
    adapter: SlackAdapter

    async def post(self, body: bytes, content_type: str, *, stamp: str | None = None, secret: str = SECRET,
                   headers: dict[str, str] | None = None) -> int:  # fmt: skip
        stamp = stamp or str(int(time.time()))
        signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
        sent = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature, "Content-Type": content_type}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{self.port}/slack/events", data=body, headers={**sent, **(headers or {})}
            ) as response,
        ):
            return response.status

    async def event(self, event: dict[str, Any], event_id: str = "Ev1", **kwargs: Any) -> int:
        body = {"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id,
                "event_time": 1, "event": event,
                "authorizations": [{"user_id": BOT_USER, "is_bot": True, "team_id": "T1"}]}  # fmt: skip
        return await self.post(json.dumps(body).encode(), "application/json", **kwargs)

    async def command(
        self, name: str, text: str = "", user: str = "U1", channel: str = "C1", trigger: str | None = None
    ) -> int:
        """A signed slash command; each has its own trigger_id, as Slack sends (pass one to replay)."""
        trigger = trigger or f"tr{next(TRIGGERS)}"
        form = {"token": "t", "team_id": "T1", "channel_id": channel, "channel_name": "general", "user_id": user,
                "command": f"/{name}", "text": text, "trigger_id": trigger,
                "response_url": self.api.url(f"/response/{name}")}  # fmt: skip
        return await self.post(urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded")


async def until(check: Callable[[], bool], seconds: float = 15) -> None:
    """Wait for the work that follows the ack (not a timing assertion: it only bounds the wait)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the adapter did not finish in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def slack(make_settings: Any, fake_openai: FakeOpenAI, slack_overrides: dict[str, Any]) -> AsyncIterator[Harness]:
    async with FakeSlack() as api:
        api.users["UBOSS"] = {"is_admin": True, "profile": {"display_name": "Boss"}}
        settings = make_settings(
            slack_bot_token="xoxb-test", slack_signing_secret=SECRET, slack_admin_users="UADMIN", **slack_overrides
        )
        async with open_engine(settings) as engine:
            adapter = SlackAdapter(engine, settings, client=AsyncWebClient(token="xoxb-test", base_url=api.base_url),
                                   edit_interval=0)  # fmt: skip
            runner = web.AppRunner(adapter.web_app())
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            assert site._server is not None
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            yield Harness(api, engine, port, adapter)
            await runner.cleanup()


def mention(text: str = "<@UBOT> hello there", ts: str = "1000.0001", **extra: Any) -> dict[str, Any]:
    return {"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C1", "event_ts": ts, **extra}


def final_text(api: FakeSlack) -> str:
    """What the newest message now shows (streamed, edited or posted)."""
    return list(api.messages.values())[-1] if api.messages else ""
