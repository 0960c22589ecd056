"""Discord as its users expect: gateway payloads (discord.com/developers/docs/events/gateway-events) fed
through discord.py's own ConnectionState into the bot's real client; REST against the loopback fake."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from adapters.discord.adapter import DiscordAdapter, gateway_client, invite_url_for, run_discord
from bot.app import open_engine
from bot.errors import ConfigError
from tests.fakes.discord_api import (
    BOT_ID,
    BOT_USER,
    CHANNEL,
    GUILD,
    GUILD_PAYLOAD,
    FakeDiscord,
    message_payload,
    user,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.harness.discord import Harness, bots_thread, discord_bot
from tests.harness.slack import until
from tests.harness.slack_socket_mode import closed_port

__all__ = ["discord_bot"]  # the fixture, shared with test_discord.py

MEMBER = {"roles": [], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0}


async def test_everyone_in_the_bots_own_thread_is_not_answered(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> open a thread"))
    thread = bots_thread(discord_bot)
    pinged = discord_bot.message("@everyone lunch is here", channel=thread, mentions_bot=False, everyone=True)
    # A member without the Mention Everyone permission: Discord does not ping, mention_everyone is false.
    unpinged = discord_bot.message("@here standup in 5", channel=thread, mentions_bot=False)
    for message in (pinged, unpinged):
        await discord_bot.adapter.on_message(message)
    await discord_bot.adapter.on_message(discord_bot.message("and a follow-up", channel=thread, mentions_bot=False))
    asked = [r["messages"][-1]["content"] for r in fake_openai.chat_requests()]
    assert asked == ["open a thread", "and a follow-up"]


async def test_everyone_with_the_bots_own_mention_is_answered(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"@everyone <@{BOT_ID}> summarize", everyone=True))
    [request] = fake_openai.chat_requests()
    assert request["messages"][-1]["content"].split() == ["@everyone", "summarize"]


@pytest.fixture
async def gateway_bot(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeDiscord, Any]]:
    """The bot's own gateway client, logged in over REST, with the team's guild as GUILD_CREATE gives it."""
    async with FakeDiscord() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        settings = make_settings(discord_token="test.token.value")
        async with open_engine(settings) as engine:
            client = gateway_client(settings)
            client.adapter = DiscordAdapter(engine, settings, client, interval=0)
            await client.login("test.token.value")
            client._connection._add_guild_from_data(GUILD_PAYLOAD)  # type: ignore[arg-type]
            yield api, client
            await engine.drain(10)
            await client.close()


async def test_an_edited_question_never_starts_a_second_answer(
    gateway_bot: tuple[FakeDiscord, Any], fake_openai: FakeOpenAI
) -> None:
    _, client = gateway_bot
    created = message_payload("200", CHANNEL, f"<@{BOT_ID}> first wording", author=user("10", "ann"),
                              guild_id=GUILD, member=MEMBER, mentions=[BOT_USER])  # fmt: skip
    client._connection.parse_message_create(created)  # MESSAGE_CREATE
    await until(lambda: len(fake_openai.chat_requests()) == 1)
    # MESSAGE_UPDATE: the whole message again, with edited_timestamp (and still the bot's mention).
    edited = {**created, "content": f"<@{BOT_ID}> second wording", "edited_timestamp": datetime.now(UTC).isoformat()}
    client._connection.parse_message_update(edited)
    client._connection.parse_message_update({**edited, "id": "201"})  # an uncached old message, edited
    await asyncio.sleep(0.5)  # dispatched events run as tasks: give them the time to (not) answer
    assert len(fake_openai.chat_requests()) == 1


async def test_the_invite_url_has_the_scopes_and_the_permissions_the_readme_lists(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        url = await invite_url_for(make_settings(discord_token="test.token.value"))
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert url.startswith("https://discord.com/oauth2/authorize?")
    assert query["client_id"] == [BOT_ID] and query["scope"] == ["bot applications.commands"]
    granted = discord.Permissions(int(query["permissions"][0]))
    readme = ("view_channel", "send_messages", "send_messages_in_threads", "create_public_threads",
              "read_message_history", "attach_files")  # fmt: skip
    assert granted == discord.Permissions(**dict.fromkeys(readme, True))


async def test_a_refused_token_is_one_clear_line(make_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDiscord() as api:
        api.failures[("GET", "/users/@me")] = [401]
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        settings = make_settings(discord_token="wrong.token.value")
        async with open_engine(settings) as engine:
            with pytest.raises(ConfigError, match="Discord refused DISCORD_TOKEN") as refused:
                await asyncio.wait_for(run_discord(engine, settings, asyncio.Event()), 10)
    assert "wrong.token.value" not in str(refused.value)


async def test_while_discord_is_unreachable_login_retries_quietly_and_stops_at_once(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{closed_port()}/api/v10")
    settings = make_settings(discord_token="test.token.value")
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    async with open_engine(settings) as engine:
        task = asyncio.create_task(run_discord(engine, settings, stop))
        await until(lambda: sum("Discord unreachable" in r.getMessage() for r in caplog.records) >= 2)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None for r in caplog.records if "Discord unreachable" in r.getMessage())


def test_a_normal_start_logs_no_voice_warnings(make_settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = True  # as on a fresh interpreter
    caplog.set_level(logging.INFO)
    gateway_client(make_settings(discord_token="t.t.t"))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
