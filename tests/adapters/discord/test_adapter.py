"""The Discord adapter with discord.py's real objects (built from gateway payloads) and REST client."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest

from tests.fakes.discord_api import (
    ADMIN_ROLE,
    BOSS_ROLE,
    BOT_ID,
    CHANNEL,
    GUILD,
    VIEW_CHANNEL,
    FakeDiscord,
    user,
)
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.harness.discord import Harness, bots_thread, interaction


async def test_a_mention_opens_a_thread_and_the_reply_streams_there(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> what is a monad, briefly?"))
    [create] = discord_bot.api.called("POST", "/threads")
    assert create.path == f"/channels/{CHANNEL}/messages/100/threads"
    assert create.json is not None and create.json["name"] == "what is a monad, briefly?"
    posts = [c for c in discord_bot.api.called("POST", "/messages") if not c.path.endswith("/threads")]
    assert posts and posts[0].path == "/channels/5000/messages"  # the new thread
    assert "echo: what is a monad, briefly?" in discord_bot.api.messages.values()
    assert fake_openai.chat_requests()[0]["messages"][-1]["content"] == "what is a monad, briefly?"


async def test_follow_ups_in_the_bots_thread_need_no_mention(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> remember 42"))
    thread = bots_thread(discord_bot)
    await discord_bot.adapter.on_message(discord_bot.message("what number?", channel=thread, mentions_bot=False))
    sent = [(m["role"], m["content"]) for m in fake_openai.chat_requests()[-1]["messages"][1:]]
    assert sent == [("user", "remember 42"), ("assistant", "echo: remember 42"), ("user", "what number?")]


async def test_bots_unaddressed_messages_and_everyone_pings_are_ignored(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    bot_message = discord_bot.message(f"<@{BOT_ID}> hi", author=BOT_ID)
    await discord_bot.adapter.on_message(bot_message)
    await discord_bot.adapter.on_message(discord_bot.message("just chatting", mentions_bot=False))
    await discord_bot.adapter.on_message(discord_bot.message("@everyone lunch", mentions_bot=False, everyone=True))
    assert fake_openai.chat_requests() == []
    assert [c.path for c in discord_bot.api.calls] == ["/users/@me", "/oauth2/applications/@me"]  # the login only


async def test_a_long_reply_is_split_under_2000_with_code_blocks_whole(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(400))
    fake_openai.enqueue(Reply(f"```python\n{code}\n```", chunk_chars=300))
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> code please"))
    messages = list(discord_bot.api.messages.values())
    assert len(messages) >= 3 and all(len(m) <= 2000 for m in messages)
    assert all(m.startswith("```python\n") and m.endswith("```") for m in messages)


@pytest.mark.parametrize(("roles", "admin"), [((), False), ((ADMIN_ROLE,), True), ((BOSS_ROLE,), True)])
async def test_admins_by_role_name_or_manage_guild(discord_bot: Harness, roles: tuple[str, ...], admin: bool) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /quota show", roles=roles))
    if admin:  # the limits are private: they go by DM
        [shown] = discord_bot.api.dm_texts("10")
        assert shown.startswith("Defaults")
    else:
        assert list(discord_bot.api.messages.values())[-1] == (
            ":warning: /quota is for admins only. Admins have the Manage Server permission or the role named in"
            " DISCORD_ADMIN_ROLE."
        )


async def test_an_attachment_over_the_cap_is_refused_clearly(discord_bot: Harness, fake_openai: FakeOpenAI) -> None:
    big = {"id": "77", "filename": "talk.mp3", "size": 300 * 1024 * 1024, "url": "http://127.0.0.1:9/x",
           "proxy_url": "http://127.0.0.1:9/x", "content_type": "audio/mpeg"}  # fmt: skip
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /transcribe", attachments=[big]))
    assert list(discord_bot.api.messages.values())[-1] == ":warning: talk.mp3 is 300 MB; the limit is 200 MB."


async def test_slash_commands_defer_then_answer_by_follow_up_ephemerally(discord_bot: Harness) -> None:
    await discord_bot.adapter.on_command(interaction(discord_bot, "usage"), "usage", "", None)
    [callback] = discord_bot.api.called("POST", "/callback")
    assert callback.json is not None and callback.json["type"] == 5 and callback.json["data"]["flags"] == 64
    [followup] = discord_bot.api.called("POST", "/webhooks/")
    assert followup.json is not None and followup.json["content"].startswith("Today: $0.00")
    assert followup.json["flags"] == 64  # ephemeral


def test_image_search_and_transcribe_have_typed_options(discord_bot: Harness) -> None:
    tree = discord_bot.adapter.tree

    def options(name: str) -> dict[str, dict[str, Any]]:
        command = tree.get_command(name)
        assert isinstance(command, discord.app_commands.Command)
        return {o["name"]: o for o in command.to_dict(tree)["options"]}

    spec = discord_bot.engine.images.spec
    image = options("image")
    assert image["prompt"]["required"] and image["prompt"]["type"] == 3
    assert [c["value"] for c in image["size"]["choices"]] == list(spec.sizes)
    assert [c["value"] for c in image["quality"]["choices"]] == list(spec.qualities)
    assert (image["n"]["min_value"], image["n"]["max_value"]) == (1, spec.max_n)
    search = options("search")
    assert search["channel"]["type"] == 7 and (search["days"]["min_value"], search["days"]["max_value"]) == (1, 3650)
    transcribe = options("transcribe")
    assert transcribe["file"]["type"] == 11 and transcribe["file"]["required"]
    assert transcribe["summary"]["type"] == 5 and not transcribe["summary"]["required"]
    assert set(options("usage")) == {"text", "file"}  # the rest: one text option, as typed


async def test_typed_options_reach_the_engine_as_the_command_people_type(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    tree = discord_bot.adapter.tree
    image, search = tree.get_command("image"), tree.get_command("search")
    assert isinstance(image, discord.app_commands.Command) and isinstance(search, discord.app_commands.Command)
    await image.callback(interaction(discord_bot, "image"), prompt="a red kite", size="1024x1536", n=2)  # type: ignore[call-arg]
    [request] = fake_openai.requests_to("/v1/images/generations")
    assert request.json is not None and (request.json["prompt"], request.json["size"], request.json["n"]) == (
        "a red kite", "1024x1536", 2,
    )  # fmt: skip
    general = discord_bot.client.get_channel(int(CHANNEL))
    await search.callback(interaction(discord_bot, "search"), query="freeze", channel=general, days=7)  # type: ignore[call-arg]
    followups = [c.json["content"] for c in discord_bot.api.called("POST", "/webhooks/") if c.json]
    assert "Nothing you can see in that channel has been remembered yet." in followups


def test_every_engine_command_is_a_slash_command(discord_bot: Harness) -> None:
    names = {command.name for command in discord_bot.adapter.tree.get_commands()}
    assert names == {spec.name for spec in discord_bot.engine.commands}


async def test_images_and_charts_are_uploaded_as_files(discord_bot: Harness) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /image a red kite"))
    assert discord_bot.api.uploads == ["image-1.png"]


async def test_an_attached_recording_is_transcribed(
    discord_bot: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    from tests.fakes.openai_server import TranscriptionReply
    from tests.harness.audio import make_audio

    discord_bot.api.files["memo.ogg"] = make_audio(tmp_path / "memo.ogg", 2).read_bytes()
    url = discord_bot.api.url("/attachments/memo.ogg")
    voice = {"id": "55", "filename": "memo.ogg", "size": len(discord_bot.api.files["memo.ogg"]), "url": url,
             "proxy_url": url, "content_type": "audio/ogg"}  # fmt: skip
    fake_openai.enqueue_transcriptions(TranscriptionReply("Buy more coffee."))
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /transcribe", attachments=[voice]))
    assert "Buy more coffee." in discord_bot.api.messages.values()


async def test_the_same_conversation_gives_the_same_outcome_on_console_and_discord(
    discord_bot: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    import io

    from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity

    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> my name is Ada"))
    thread = bots_thread(discord_bot)
    await discord_bot.adapter.on_message(discord_bot.message("what is my name?", channel=thread, mentions_bot=False))
    via_discord = fake_openai.chat_requests()[-1]["messages"]
    out = io.StringIO()
    stdin = io.StringIO("my name is Ada\nwhat is my name?\n")
    await ConsoleAdapter(discord_bot.engine, ConsoleIdentity(), stdin=stdin, stdout=out, files_dir=tmp_path).run()
    assert fake_openai.chat_requests()[-1]["messages"] == via_discord
    assert out.getvalue().splitlines() == ["echo: my name is Ada", "echo: what is my name?"]


async def test_commands_are_synced_once_until_they_change(discord_bot: Harness) -> None:
    from adapters.discord.adapter import sync_commands

    assert await sync_commands(discord_bot.adapter, [int(GUILD)])
    assert not await sync_commands(discord_bot.adapter, [int(GUILD)])  # unchanged: no call to Discord
    assert await sync_commands(discord_bot.adapter, [int(GUILD)], force=True)  # `python -m bot discord-sync`
    puts = discord_bot.api.called("PUT", f"/guilds/{GUILD}/commands")
    assert len(puts) == 2
    assert {c["name"] for c in puts[0].json} == {spec.name for spec in discord_bot.engine.commands}  # type: ignore[index,union-attr]


def test_shards_come_from_the_settings(make_settings: Any) -> None:
    from adapters.discord.adapter import gateway_client
    from bot.errors import ConfigError

    split = gateway_client(make_settings(discord_token="t.t.t", discord_shard_count=4, discord_shard_ids="0,1"))
    assert (split.shard_count, split.shard_ids) == (4, [0, 1])
    auto = gateway_client(make_settings(discord_token="t.t.t"))
    assert auto.shard_count is None and auto.shard_ids is None  # discord.py asks the gateway how many
    with pytest.raises(ConfigError, match="DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"):
        gateway_client(make_settings(discord_token="t.t.t", discord_shard_ids="0"))


async def test_a_command_in_a_mention_keeps_its_channel_argument(discord_bot: Harness) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /search freeze channel:<#{CHANNEL}>"))
    assert "Nothing you can see in that channel has been remembered yet." in discord_bot.api.messages.values()


def thread_in(harness: Harness, thread_id: str, *, private: bool, owner: str) -> discord.Thread:
    """A thread of #general as the gateway's THREAD_CREATE describes it."""
    guild = harness.client.get_guild(int(GUILD))
    assert guild is not None
    thread = discord.Thread(guild=guild, state=harness.client._connection, data={
        "id": thread_id, "type": 12 if private else 11, "guild_id": GUILD, "parent_id": CHANNEL, "owner_id": owner,
        "name": "t", "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                         "archive_timestamp": "2026-11-24T00:00:00+00:00"},
        "message_count": 1, "member_count": 1, "rate_limit_per_user": 0, "total_message_sent": 1,
    })  # fmt: skip
    guild._add_thread(thread)
    return thread


async def test_search_sees_what_the_member_may_read_and_no_one_elses_dm(discord_bot: Harness) -> None:
    from adapters.discord.directory import DiscordDirectory

    guild = discord_bot.client.get_guild(int(GUILD))
    assert guild is not None
    # #bosses: hidden from @everyone, open to the managers role.
    guild._add_channel(discord.TextChannel(state=discord_bot.client._connection, guild=guild, data={
        "id": "6", "type": 0, "name": "bosses", "guild_id": GUILD, "position": 1, "permission_overwrites": [
            {"id": GUILD, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
            {"id": BOSS_ROLE, "type": 0, "allow": str(VIEW_CHANNEL), "deny": "0"}]}))  # type: ignore[arg-type]  # fmt: skip
    thread_in(discord_bot, "5001", private=False, owner="99")
    thread_in(discord_bot, "5002", private=True, owner="99")
    thread_in(discord_bot, "5003", private=True, owner="10")
    ann = discord_bot.message("x").author
    boss = discord_bot.message("x", author="11", roles=(BOSS_ROLE,)).author
    as_ann = DiscordDirectory(ann, int(CHANNEL), None)
    as_boss = DiscordDirectory(boss, int(CHANNEL), None)
    assert await as_ann.visible_channels([CHANNEL, "6", "404"]) == {CHANNEL}
    assert await as_boss.visible_channels([CHANNEL, "6", "404"]) == {CHANNEL, "6"}
    assert await as_ann.can_read_thread(CHANNEL, "5001")  # public thread
    assert not await as_ann.can_read_thread(CHANNEL, "5002")  # someone else's private thread
    assert await as_ann.can_read_thread(CHANNEL, "5003")  # her own
    assert not await as_boss.can_read_thread(CHANNEL, "5003")  # managing the guild is not managing threads
    assert await as_ann.link(CHANNEL, "5001", "123") == f"https://discord.com/channels/{GUILD}/5001/123"
    assert await as_ann.link(CHANNEL, "", "") == f"https://discord.com/channels/{GUILD}/{CHANNEL}"

    dm_user = discord.User(state=discord_bot.client._connection, data=user("10", "ann"))  # type: ignore[arg-type]
    in_dm = DiscordDirectory(dm_user, 555, None)
    assert await in_dm.visible_channels(["555", "556"]) == {"555"}
    assert await in_dm.link("555", "", "9") == "https://discord.com/channels/@me/555/9"


@pytest.mark.parametrize("status", [429, 500])
async def test_a_rate_limited_or_failed_post_is_retried_and_the_answer_arrives(
    discord_bot: Harness, status: int
) -> None:
    discord_bot.api.failures[("POST", "/channels/5000/messages")] = [status]
    await asyncio.wait_for(discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> hello")), 10)
    assert len(discord_bot.api.called("POST", "/channels/5000/messages")) == 2  # refused once, then sent
    assert "echo: hello" in discord_bot.api.messages.values()


async def test_when_discord_refuses_every_post_the_turn_ends_logged_and_charged_as_reported(
    discord_bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    discord_bot.api.failures[("POST", "/channels/5000/messages")] = [403] * 10
    await asyncio.wait_for(discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> hello")), 10)
    assert "echo: hello" not in discord_bot.api.messages.values()
    assert "could not deliver an error message to the platform" in caplog.text
    # The model's answer ran to its end and was charged at its reported usage; nothing is left reserved.
    [(kind, _, cost, state)] = await discord_bot.engine.store.ledger.ledger_rows(GUILD)
    assert (kind, state) == ("chat", "settled") and cost > 0


async def test_the_operator_cli_learns_guild_names_over_http(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.discord.guilds import guild_names

    async with FakeDiscord() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        assert await guild_names(make_settings(discord_token="test.token.value")) == {GUILD: "Team"}
        assert await guild_names(make_settings()) == {}  # no token: nothing asked
    assert [c.path for c in api.calls if c.path.endswith("/guilds")] == ["/users/@me/guilds"]  # one page: 1 < 200


async def test_an_attached_image_is_seen_edited_with_image_and_ask_can_speak(
    discord_bot: Harness, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.openai_server import image_parts
    from tests.harness.vision import png

    discord_bot.api.files["cat.png"] = png(32, 32)
    url = discord_bot.api.url("/attachments/cat.png")
    photo = {"id": "56", "filename": "cat.png", "size": len(discord_bot.api.files["cat.png"]), "url": url,
             "proxy_url": url, "content_type": "image/png"}  # fmt: skip
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> what animal is this?", attachments=[photo]))
    [part] = image_parts(fake_openai.chat_requests()[-1])
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /image give it a hat", attachments=[photo]))
    assert fake_openai.edit_uploads[0]["image"] == ("cat.png", discord_bot.api.files["cat.png"])
    tree = discord_bot.adapter.tree
    ask = tree.get_command("ask")
    assert isinstance(ask, discord.app_commands.Command)
    options = {o["name"]: o for o in ask.to_dict(tree)["options"]}
    assert options["voice"]["type"] == 5 and options["file"]["type"] == 11
    image_options = tree.get_command("image")
    assert isinstance(image_options, discord.app_commands.Command)
    assert {o["name"]: o for o in image_options.to_dict(tree)["options"]}["image"]["type"] == 11
    await ask.callback(interaction(discord_bot, "ask"), question="say hi", voice=True)  # type: ignore[call-arg]
    [speech] = fake_openai.requests_to("/v1/audio/speech")
    assert speech.json is not None and speech.json["input"] == "echo: say hi"
    assert "speech.mp3" in discord_bot.api.uploads
