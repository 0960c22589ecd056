"""/catchup on Discord: GET /channels/{id}/messages read by discord.py's own client against the fake REST API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import discord

from storage.digests import DigestKey, DigestSchedule
from tests.fakes.discord_api import BOT_ID, BOT_USER, CHANNEL, GUILD, READER_ROLE, user
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.harness.discord import Harness, bots_thread, discord_bot, interaction
from tests.harness.slack import until

__all__ = ["discord_bot"]  # the harness fixture, shared with the Discord adapter's own tests

ADA, BEA = user("21", "Ada"), user("22", "Bea")


def a_busy_channel(harness: Harness) -> dict[str, str]:
    now = datetime.now(UTC)
    api = harness.api
    ids = {"old": api.add_history(CHANNEL, now - timedelta(days=3), "Last week's lunch.", ADA)}
    for n in range(150):  # two pages of 100
        ids[f"m{n}"] = api.add_history(CHANNEL, now - timedelta(minutes=200 - n), f"Status update {n}.", BEA)
    ids["join"] = api.add_history(CHANNEL, now - timedelta(minutes=30), "", BEA, kind=7)  # a member joined
    ids["plan"] = api.add_history(CHANNEL, now - timedelta(minutes=20), "We ship on Friday.", ADA)
    return ids


async def test_slash_catchup_reads_every_page_through_a_429_and_links_with_jump_urls(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    ids = a_busy_channel(discord_bot)
    discord_bot.api.failures[("GET", f"/channels/{CHANNEL}/messages")] = [429]  # discord.py waits it out
    fake_openai.enqueue(Reply("Bea posted updates [1]; Ada ships on Friday [151]."))
    asked = interaction(discord_bot, "catchup", roles=(READER_ROLE,))
    await discord_bot.adapter.on_command(asked, "catchup", "1d", None)
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"].splitlines()
    assert len(content) == 151 and content[0].endswith("Bea: Status update 0.")
    assert content[-1].endswith("Ada: We ship on Friday.")  # not last week's lunch, not the join notice
    reads = discord_bot.api.called("GET", f"/channels/{CHANNEL}/messages")
    assert len(reads) == 1 + 2  # the 429, then pages of 100 and 51
    [followup] = discord_bot.api.called("POST", "/webhooks/")
    jump = f"https://discord.com/channels/{GUILD}/{CHANNEL}"
    assert followup.json is not None and followup.json["flags"] == 64  # only the asker sees it
    assert followup.json["content"] == (
        f"Bea posted updates [1]({jump}/{ids['m0']}); Ada ships on Friday [151]({jump}/{ids['plan']})."
    )


async def test_a_member_who_cannot_read_the_history_is_refused_before_any_read_or_model_call(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    a_busy_channel(discord_bot)
    await discord_bot.adapter.on_command(interaction(discord_bot, "catchup"), "catchup", "public", None)
    [followup] = discord_bot.api.called("POST", "/webhooks/")
    assert followup.json is not None and "cannot read that channel's history" in followup.json["content"]
    assert discord_bot.api.called("GET", "/messages") == [] and fake_openai.chat_requests() == []


async def test_a_mention_in_a_thread_catches_up_on_the_whole_thread(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    thread = bots_thread(discord_bot)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    discord_bot.api.add_history(str(thread.id), long_ago, "Who owns the release notes?", BEA)
    discord_bot.api.add_history(str(thread.id), long_ago + timedelta(hours=1), "I do.", ADA)
    fake_openai.enqueue(Reply("Ada owns the release notes."))
    asked = discord_bot.message(f"<@{BOT_ID}> /catchup public", channel=thread, roles=(READER_ROLE,))
    await discord_bot.adapter.on_message(asked)
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert "Bea: Who owns the release notes?" in content and "Ada: I do." in content  # a month old: all of it
    assert "Ada owns the release notes." in discord_bot.api.texts_in(str(thread.id))


def test_the_slash_command_has_an_optional_since_and_a_public_switch(discord_bot: Harness) -> None:
    tree = discord_bot.adapter.tree
    command = tree.get_command("catchup")
    assert isinstance(command, discord.app_commands.Command)
    options = {o["name"]: (o["type"], o["required"]) for o in command.to_dict(tree)["options"]}
    assert options == {"since": (3, False), "public": (5, False)}


async def test_the_bots_scheduler_posts_a_discord_channels_digest_pinging_nobody(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    ids = a_busy_channel(discord_bot)
    fake_openai.enqueue(Reply("Ada ships on Friday [151]."))
    engine = discord_bot.engine
    now = engine.now()
    due = f"{(now - timedelta(minutes=1)).astimezone(ZoneInfo(engine.settings.quota_timezone)):%H:%M}"
    key = DigestKey("discord", str(GUILD), str(CHANNEL))
    guild = discord_bot.client.get_guild(int(GUILD))
    assert guild is not None  # the bot's own member, as GUILD_CREATE sends it, with the history its invite asks
    member = {"user": BOT_USER, "roles": [READER_ROLE], "joined_at": None, "deaf": False, "mute": False, "flags": 0}
    guild._add_member(discord.Member(data=member, guild=guild, state=discord_bot.client._connection))  # type: ignore[arg-type]
    await engine.store.digests.set(DigestSchedule(key, "daily", None, due, "21", now - timedelta(days=2)))

    stop = asyncio.Event()
    async with engine.background(stop):  # the scheduler's first round runs at once
        await until(lambda: bool(discord_bot.api.called("POST", f"/channels/{CHANNEL}/messages")))
    [posted] = discord_bot.api.called("POST", f"/channels/{CHANNEL}/messages")
    assert posted.json is not None and posted.json["allowed_mentions"] == {"parse": []}
    jump = f"https://discord.com/channels/{GUILD}/{CHANNEL}"
    assert posted.json["content"].startswith("Digest of this channel since ")
    assert posted.json["content"].endswith(f"Ada ships on Friday [151]({jump}/{ids['plan']}).")
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert "Last week's lunch." not in content  # the first run covers one day


async def test_a_channel_catchup_reads_public_archived_threads_active_since_and_skips_older_ones(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    now = datetime.now(UTC)
    api = discord_bot.api
    api.add_history(CHANNEL, now - timedelta(hours=3), "Who picks the venue?", ADA)
    recent = api.add_archived_thread(CHANNEL, now - timedelta(hours=1), "venue")
    api.add_history(recent, now - timedelta(hours=2), "The harbour hall is booked.", BEA)
    api.add_history(recent, now - timedelta(days=2), "Any ideas for a venue?", BEA)  # before `since`
    old = api.add_archived_thread(CHANNEL, now - timedelta(days=3), "lunch")
    api.add_history(old, now - timedelta(days=4), "Pizza on Friday.", BEA)
    fake_openai.enqueue(Reply("Bea booked the harbour hall [2]."))
    asked = interaction(discord_bot, "catchup", roles=(READER_ROLE,))
    await discord_bot.adapter.on_command(asked, "catchup", "1d", None)
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"].splitlines()
    assert [line.split(" ", 3)[3] for line in content] == [
        "Ada: Who picks the venue?",
        "Bea: The harbour hall is booked.",
    ]
    assert len(api.called("GET", f"/channels/{CHANNEL}/threads/archived/public")) == 1
    assert len(api.called("GET", f"/channels/{recent}/messages")) == 1
    assert api.called("GET", f"/channels/{old}/messages") == []  # archived before `since`: not read
    [followup] = api.called("POST", "/webhooks/")
    assert followup.json is not None
    assert f"[2](https://discord.com/channels/{GUILD}/{recent}/" in followup.json["content"]  # the thread's reply
