"""Running an operator's command that connects to Discord (`python -m bot digests run`): the fake REST API and
the fake gateway it names, discord.py pointed at them, and the environment the command reads its settings from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import discord
import pytest

from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_gateway import FakeGateway
from tests.fakes.openai_server import FakeOpenAI

TOKEN = "test.token.value"


@dataclass
class DiscordFakes:
    api: FakeDiscord
    gateway: FakeGateway


@asynccontextmanager
async def discord_for_the_cli(
    monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI, db_url: str, **env: str
) -> AsyncIterator[DiscordFakes]:
    """Both fakes serving, `GET /gateway/bot` naming the gateway, and DISCORD_TOKEN (and `env`) set."""
    async with FakeDiscord() as api, FakeGateway() as gateway:
        api.gateway_url = gateway.websocket_url
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        settings = {
            "DATABASE_URL": db_url, "OPENAI_API_KEY": "test-key-not-secret", "OPENAI_BASE_URL": fake_openai.base_url,
            "FETCH_ENABLED": "false", "DISCORD_TOKEN": TOKEN,
        }  # fmt: skip
        for name, value in {**settings, **env}.items():
            monkeypatch.setenv(name, value)
        yield DiscordFakes(api, gateway)
