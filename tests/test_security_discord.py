"""Discord, as an attacker would try it: the bot pings no one, and an admin role is one the operator chose by id."""

from __future__ import annotations

import itertools
from typing import Any

import discord
import pytest

from adapters.discord.adapter import DiscordAdapter, intents
from bot.app import open_engine
from tests.fakes.discord_api import ADMIN_ROLE, BOT_ID, GUILD, DiscordCall, FakeDiscord, logged_in_client
from tests.fakes.openai_server import FakeOpenAI, ImageReply, Reply
from tests.test_discord import Harness, interaction
from tests.test_discord import discord_bot as discord_fixture

discord_bot = discord_fixture  # discord.py's real client against the fake REST API (shared with test_discord)

HOSTILE = "@everyone @here <@&3> <@10> <@!10> look!"


def message_writes(harness: Harness) -> list[DiscordCall]:
    """Every REST call that posts or edits a message (channel sends, follow-ups, edits, uploads)."""
    return [
        c for c in harness.api.calls
        if c.method in ("POST", "PATCH") and c.json is not None and not c.path.endswith(("/threads", "/callback"))
    ]  # fmt: skip


async def test_no_send_edit_or_follow_up_can_ping_anyone(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(HOSTILE * 3, chunk_chars=5))  # a send, then edits
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> {HOSTILE}"))
    fake_openai.enqueue(Reply(HOSTILE * 3, chunk_chars=5))  # a follow-up, then its edits
    await discord_bot.adapter.on_command(interaction(discord_bot, "ask"), "ask", HOSTILE, None)
    fake_openai.enqueue_images(ImageReply(revised_prompt=HOSTILE))  # a file with a caption
    await discord_bot.adapter.on_command(interaction(discord_bot, "image"), "image", "a cat", None)
    await discord_bot.adapter.on_command(interaction(discord_bot, "image"), "image", HOSTILE * 10_000, None)  # error
    writes = message_writes(discord_bot)
    kinds = {(c.method, c.path.split("/")[1], bool(c.json and c.json.get("multipart"))) for c in writes}
    assert {("POST", "channels", False), ("PATCH", "channels", False), ("POST", "webhooks", False),
            ("PATCH", "webhooks", False), ("POST", "webhooks", True)} <= kinds  # fmt: skip
    assert any("@everyone" in str(c.json.get("content")) for c in writes if c.json)  # the text itself is shown
    assert [c.path for c in writes if c.json and c.json.get("allowed_mentions") != {"parse": []}] == []


async def _admin(harness: Harness, roles: tuple[str, ...]) -> bool:
    await harness.adapter.on_message(harness.message(f"<@{BOT_ID}> /quota show", roles=roles))
    return list(harness.api.messages.values())[-1].startswith("Defaults")


def _add_role(harness: Harness, role_id: str, name: str) -> None:
    guild = harness.client.get_guild(int(GUILD))
    assert guild is not None
    data: Any = {"id": role_id, "name": name, "permissions": "0", "position": 5, "color": 0, "hoist": False,
                 "managed": False, "mentionable": False}  # fmt: skip
    guild._add_role(discord.Role(guild=guild, state=harness.client._connection, data=data))


@pytest.mark.parametrize("configured", ["id", "name"])
async def test_the_admin_role_is_matched_by_id_so_a_copied_name_is_not_admin(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, configured: str
) -> None:
    value = ADMIN_ROLE if configured == "id" else "bot-admins"
    async with FakeDiscord() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        settings = make_settings(discord_token="test.token.value", discord_admin_role=value)
        async with open_engine(settings) as engine:
            client = await logged_in_client(intents())
            harness = Harness(api, engine, DiscordAdapter(engine, settings, client, interval=0), client,
                              itertools.count(100))  # fmt: skip
            _add_role(harness, "77", "bot-admins")  # a member who may create roles made a look-alike
            _add_role(harness, "78", ADMIN_ROLE)  # and one named after the real role's id
            try:
                assert await _admin(harness, (ADMIN_ROLE,))
                if configured == "id":
                    assert not await _admin(harness, ("77",))
                    assert not await _admin(harness, ("78",))
                else:
                    assert await _admin(harness, ("77",))  # a name is spoofable: the reason an id is preferred
            finally:
                await client.close()
