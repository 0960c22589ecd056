"""Discord asks the asker to allow a tool that acts with Allow / Deny buttons: only the asker's click answers,
as a component interaction that discord.py builds from the gateway; no click in time is no."""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from adapters.discord.adapter import ChannelResponder
from tests.fakes.discord_api import BOT_ID, CHANNEL, GUILD, user
from tests.harness.discord import Harness, discord_bot
from tests.harness.slack import until

__all__ = ["discord_bot"]  # the fixture, shared with test_discord.py
QUESTION = 'Allow team.create_ticket("title": "printer")? [y/N]'


def click(harness: Harness, custom_id: str, clicker: str) -> discord.Interaction:
    """A MESSAGE_COMPONENT interaction (a button click) by `clicker`, as discord.py builds it from the gateway."""
    payload = {
        "id": "901", "application_id": BOT_ID, "type": 3, "token": "ctoken", "version": 1, "guild_id": GUILD,
        "channel_id": CHANNEL, "channel": {"id": CHANNEL, "type": 0, "guild_id": GUILD, "name": "general"},
        "member": {"user": user(clicker, f"user{clicker}"), "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                   "deaf": False, "mute": False, "permissions": "0", "flags": 0},
        "data": {"custom_id": custom_id, "component_type": 2}, "locale": "en-US", "app_permissions": "0",
        "entitlements": [], "authorizing_integration_owners": {}, "context": 0, "attachment_size_limit": 10485760,
    }  # fmt: skip
    return discord.Interaction(data=payload, state=harness.client._connection)  # type: ignore[arg-type]


def buttons(harness: Harness) -> dict[str, str]:
    """The question's buttons, label -> custom_id, from the message the bot posted."""
    posted = [c for c in harness.api.called("POST", f"/channels/{CHANNEL}/messages") if c.json]
    rows: list[Any] = posted[-1].json["components"]  # type: ignore[index]
    return {b["label"]: b["custom_id"] for row in rows for b in row["components"]}


async def ask(harness: Harness, seconds: float = 30) -> asyncio.Task[bool | None]:
    channel = harness.client.get_channel(int(CHANNEL))
    asker = harness.message("hi", author="10").author
    responder = ChannelResponder(channel, asker, interval=0, approvals=harness.adapter.approvals)  # type: ignore[arg-type]
    task = asyncio.create_task(responder.ask_approval(QUESTION, "10", seconds))
    await until(lambda: bool(harness.api.called("POST", f"/channels/{CHANNEL}/messages")))
    return task


async def test_the_askers_click_answers_and_the_question_says_how(discord_bot: Harness) -> None:
    asked = await ask(discord_bot)
    ids = buttons(discord_bot)
    assert set(ids) == {"Allow", "Deny"}
    await discord_bot.adapter.on_interaction(click(discord_bot, ids["Allow"], "11"))  # someone else
    [told] = discord_bot.api.called("POST", "/callback")
    assert told.json is not None and told.json["data"]["content"] == "Only the person who asked can answer this."
    await discord_bot.adapter.on_interaction(click(discord_bot, ids["Deny"], "10"))
    assert await asked is False
    edited = [c for c in discord_bot.api.called("PATCH", f"/channels/{CHANNEL}/messages/") if c.json]
    assert edited[-1].json is not None and edited[-1].json["content"] == f"{QUESTION} (not allowed)"
    assert edited[-1].json["components"] == []


async def test_allow_allows_and_no_click_in_time_is_no(discord_bot: Harness) -> None:
    asked = await ask(discord_bot)
    await discord_bot.adapter.on_interaction(click(discord_bot, buttons(discord_bot)["Allow"], "10"))
    assert await asked is True
    late = await ask(discord_bot, seconds=0.2)
    assert await late is None
    edited = [c for c in discord_bot.api.called("PATCH", f"/channels/{CHANNEL}/messages/") if c.json]
    assert edited[-1].json is not None and edited[-1].json["content"] == f"{QUESTION} (no answer in 0.2 s: not allowed)"
