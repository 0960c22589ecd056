"""Discord, as an attacker would try it: the bot pings no one, and an admin role is one the operator chose by id."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from adapters.discord.adapter import DiscordAdapter, intents
from bot.app import open_engine
from storage import ConversationKey
from tests.fakes.discord_api import (
    ADMIN_ROLE,
    BOT_ID,
    CHANNEL,
    GUILD,
    DiscordCall,
    FakeDiscord,
    logged_in_client,
    message_payload,
    user,
)
from tests.fakes.openai_server import FakeOpenAI, ImageReply, Reply
from tests.harness.discord import Harness, bots_thread, interaction
from tests.harness.discord import discord_bot as discord_fixture
from tests.harness.security_discord import dm_from

discord_bot = discord_fixture  # discord.py's real client against the fake REST API (shared with test_discord)

NOW = datetime(2026, 11, 24, tzinfo=UTC)
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
    before = len(harness.api.dm_texts("10"))
    await harness.adapter.on_message(harness.message(f"<@{BOT_ID}> /quota show", roles=roles))
    answers = harness.api.dm_texts("10")  # the limits are private: an admin gets them by DM
    return len(answers) > before and answers[-1].startswith("Defaults")


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


async def test_a_prompt_saved_in_a_dm_is_that_persons_alone(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    await discord_bot.adapter.on_message(dm_from(discord_bot, "21", "/prompt save recipe Alice's secret {x}"))
    await discord_bot.adapter.on_message(dm_from(discord_bot, "22", "/prompt list"))
    assert "recipe" not in list(discord_bot.api.messages.values())[-1]
    await discord_bot.adapter.on_message(dm_from(discord_bot, "22", "/prompt show recipe"))
    assert "Alice's secret" not in list(discord_bot.api.messages.values())[-1]
    await discord_bot.adapter.on_message(dm_from(discord_bot, "22", "/prompt save recipe Bob's own {x}"))
    store = discord_bot.engine.store.prompts
    assert [(v.version, v.author_id) for v in await store.versions("dm-21", "recipe")] == [
        (1, "21")
    ]  # Bob added nothing to Alice's
    assert [(v.version, v.author_id) for v in await store.versions("dm-22", "recipe")] == [(1, "22")]


async def test_dm_spend_is_the_persons_own_team(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    await discord_bot.adapter.on_message(dm_from(discord_bot, "21", "hello"))
    assert [kind for kind, *_ in await discord_bot.engine.store.ledger.ledger_rows("dm-21")] == ["chat"]
    assert await discord_bot.engine.store.ledger.ledger_rows("dm") == []


async def test_dms_can_be_turned_off(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        settings = make_settings(discord_token="test.token.value", discord_dms=False)
        async with open_engine(settings) as engine:
            client = await logged_in_client(intents())
            harness = Harness(api, engine, DiscordAdapter(engine, settings, client, interval=0), client,
                              itertools.count(100))  # fmt: skip
            try:
                await harness.adapter.on_message(dm_from(harness, "21", "hello"))
            finally:
                await client.close()
    assert fake_openai.chat_requests() == []
    assert list(api.messages.values()) == ["I don't take direct messages here. Mention me in a server channel instead."]


async def _history(harness: Harness) -> list[str]:
    conv = await harness.engine.store.active_conversation(ConversationKey("discord", GUILD, CHANNEL, "5000"), NOW)
    return [m.content for m in await harness.engine.store.messages(conv.id)]


async def test_raw_deletes_and_edits_reach_history(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> my prod password is hunter2"))  # id 100
    thread = bots_thread(discord_bot)
    await discord_bot.adapter.on_message(discord_bot.message("second question", channel=thread, mentions_bot=False))
    assert len(await _history(discord_bot)) == 4
    # An edit of an uncached message arrives raw, with the message as the gateway sends it.
    edited = message_payload("101", "5000", "second question, edited", author=user("10", "user10"), guild_id=GUILD)
    state = discord_bot.client._connection
    update = discord.RawMessageUpdateEvent(edited, state.create_message(channel=thread, data=edited))  # type: ignore[arg-type]
    await discord_bot.adapter.on_raw_message_edit(update)
    delete = discord.RawMessageDeleteEvent({"id": "100", "channel_id": "5000", "guild_id": GUILD})
    await discord_bot.adapter.on_raw_message_delete(delete)
    assert await _history(discord_bot) == ["second question, edited", "echo: second question"]
    bulk = discord.RawBulkMessageDeleteEvent({"ids": ["101"], "channel_id": "5000", "guild_id": GUILD})
    await discord_bot.adapter.on_raw_bulk_message_delete(bulk)
    assert await _history(discord_bot) == []
    assert len(fake_openai.chat_requests()) == 2  # the edit started no answer
