"""The Discord harness: the fake Discord REST API, a real discord.py client fed gateway payloads, and the engine."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import discord
import pytest

from adapters.discord.adapter import DiscordAdapter, intents
from bot.app import open_engine
from bot.chat.engine import Engine
from tests.fakes.discord_api import (
    BOT_ID,
    BOT_USER,
    CHANNEL,
    GUILD,
    FakeDiscord,
    logged_in_client,
    message_payload,
    user,
)
from tests.fakes.openai_server import FakeOpenAI


@dataclass
class Harness:
    api: FakeDiscord
    engine: Engine
    adapter: DiscordAdapter
    client: discord.Client
    ids: Any

    def message(
        self, content: str, *, author: str = "10", channel: Any = None, roles: tuple[str, ...] = (),
        mentions_bot: bool = True, everyone: bool = False, attachments: list[Any] | None = None,
    ) -> discord.Message:  # fmt: skip
        """A MESSAGE_CREATE from the gateway, as discord.py's own state turns it into a Message."""
        channel = channel or self.client.get_channel(int(CHANNEL))
        payload = message_payload(
            str(next(self.ids)), str(channel.id), content, author=user(author, f"user{author}"), guild_id=GUILD,
            member={"roles": list(roles), "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                    "flags": 0},
            mentions=[BOT_USER] if mentions_bot else [], mention_everyone=everyone, attachments=attachments,
        )  # fmt: skip
        return self.client._connection.create_message(channel=channel, data=payload)  # type: ignore[arg-type]


def bots_thread(harness: Harness) -> discord.Thread:
    """The gateway's THREAD_CREATE for the thread the bot just opened (REST answered id 5000, owner the bot)."""
    guild = harness.client.get_guild(int(GUILD))
    assert guild is not None
    thread = discord.Thread(guild=guild, state=harness.client._connection, data={
        "id": "5000", "type": 11, "guild_id": GUILD, "parent_id": CHANNEL, "owner_id": BOT_ID, "name": "t",
        "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                            "archive_timestamp": "2026-11-24T00:00:00+00:00"},
        "message_count": 1, "member_count": 1, "rate_limit_per_user": 0, "total_message_sent": 1,
    })  # fmt: skip
    guild._add_thread(thread)
    return thread


@asynccontextmanager
async def discord_harness(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, **settings_: Any
) -> AsyncIterator[Harness]:
    """discord.py's real client logged in to the fake REST API, and the adapter on an engine with these settings."""
    async with FakeDiscord() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        settings = make_settings(discord_token="test.token.value", **settings_)
        async with open_engine(settings) as engine:
            client = await logged_in_client(intents())
            adapter = DiscordAdapter(engine, settings, client, interval=0)
            yield Harness(api, engine, adapter, client, itertools.count(100))
            await client.close()


@pytest.fixture
async def discord_bot(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    async with discord_harness(make_settings, monkeypatch, discord_admin_role="bot-admins") as harness:
        yield harness


def interaction(harness: Harness, name: str, *, roles: tuple[str, ...] = ()) -> discord.Interaction:
    """An APPLICATION_COMMAND interaction from ann in #general, as discord.py builds it from the gateway."""
    payload = {
        "id": "900", "application_id": BOT_ID, "type": 2, "token": "itoken", "version": 1, "guild_id": GUILD,
        "channel_id": CHANNEL, "channel": {"id": CHANNEL, "type": 0, "guild_id": GUILD, "name": "general"},
        "member": {"user": user("10", "ann"), "roles": list(roles), "joined_at": "2026-01-01T00:00:00+00:00",
                   "deaf": False, "mute": False, "permissions": "0", "flags": 0},
        "data": {"id": "1", "name": name, "type": 1}, "locale": "en-US", "app_permissions": "0",
        "entitlements": [], "authorizing_integration_owners": {}, "context": 0, "attachment_size_limit": 10485760,
    }  # fmt: skip
    return discord.Interaction(data=payload, state=harness.client._connection)  # type: ignore[arg-type]
