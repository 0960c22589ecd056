"""An answer marked private never lands where others can read it: on Discord a mention's private answer goes
by DM (or, where DMs are refused, the channel is told to use the slash command, never the answer), slash
commands answer ephemerally, files included; Slack answers privately by ephemeral message."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from adapters.discord.adapter import ANSWERED_PRIVATELY, SENT_BY_DM
from bot.chat.engine import Engine
from bot.private_exchange import UNREACHABLE
from tests.fakes.discord_api import ADMIN_ROLE, BOT_ID
from tests.fakes.openai_server import FakeOpenAI
from tests.harness.discord import Harness, discord_harness, interaction
from tests.harness.security_discord import dm_from
from tests.harness.slack import Harness as SlackHarness
from tests.harness.slack import mention, until
from tests.harness.slack import slack as slack_fixture

slack = slack_fixture  # slack-bolt and slack-sdk against the fake Web API (shared with test_slack)

ASKER = "10"
PRIVATE_COMMANDS = ["/dashboard", "/usage", "/usage team", "/quota show", "/search mangoes", "/help", "/forget",
                    "/forget confirm"]  # fmt: skip


@pytest.fixture
async def discord_bot(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    """The Discord harness with the dashboard served (PORT set) and an admin role chosen by id."""
    async with discord_harness(make_settings, monkeypatch, discord_admin_role=ADMIN_ROLE, port=8080) as harness:
        yield harness


def public_texts(harness: Harness) -> list[str]:
    """Every message others can read: in channels and threads (not DMs), and follow-ups Discord shows to all."""
    api = harness.api
    return [
        text for message_id, text in api.messages.items()
        if api.channel_of.get(message_id) not in api.dm_channels and not api.ephemeral.get(message_id)
    ]  # fmt: skip


def public_uploads(harness: Harness) -> list[str]:
    """Paths of messages with a file that others can read."""
    return [
        c.path for c in harness.api.calls
        if c.method == "POST" and c.json and c.json.get("multipart") and c.json.get("flags") != 64
        and c.path.split("/")[2:3] != [f"9{ASKER}"]
    ]  # fmt: skip


@pytest.mark.parametrize("command", PRIVATE_COMMANDS)
async def test_a_private_command_by_mention_is_answered_by_dm_never_in_the_thread(
    discord_bot: Harness, command: str
) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> {command}", roles=(ADMIN_ROLE,)))
    answers = discord_bot.api.dm_texts(ASKER)
    assert answers and all(answer not in public_texts(discord_bot) for answer in answers)
    assert public_texts(discord_bot) == [SENT_BY_DM]  # the thread the mention opened says where the answer went
    assert public_uploads(discord_bot) == []  # /usage team's chart went by DM too


async def test_the_dashboard_link_by_mention_reaches_the_asker_alone(discord_bot: Harness) -> None:
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /dashboard", roles=(ADMIN_ROLE,)))
    [answer] = discord_bot.api.dm_texts(ASKER)
    assert "/dashboard/login?token=" in answer
    assert not any("token=" in text for text in public_texts(discord_bot))


async def test_where_dms_are_refused_the_thread_is_told_to_use_the_slash_command_never_the_answer(
    discord_bot: Harness,
) -> None:
    discord_bot.api.no_dms.add(ASKER)  # Discord answers 50007 "Cannot send messages to this user"
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /dashboard", roles=(ADMIN_ROLE,)))
    assert public_texts(discord_bot) == [f":warning: {UNREACHABLE.format(command='dashboard')}"]
    assert discord_bot.api.dm_texts(ASKER) == []
    await discord_bot.adapter.on_message(discord_bot.message(f"<@{BOT_ID}> /usage team", roles=(ADMIN_ROLE,)))
    assert public_texts(discord_bot)[-1] == f":warning: {UNREACHABLE.format(command='usage')}"
    assert public_uploads(discord_bot) == []


async def test_in_a_dm_the_private_answer_stays_in_that_dm(discord_bot: Harness) -> None:
    await discord_bot.adapter.on_message(dm_from(discord_bot, ASKER, "/usage"))
    assert discord_bot.api.called("POST", "/users/@me/channels") == []
    [answer] = discord_bot.api.texts_in(f"9{ASKER}")
    assert answer.startswith("Today: $0.00")


async def test_a_slash_commands_private_file_is_ephemeral_too(discord_bot: Harness) -> None:
    await discord_bot.adapter.on_command(interaction(discord_bot, "usage", roles=(ADMIN_ROLE,)), "usage", "team", None)
    followups = discord_bot.api.called("POST", "/webhooks/")
    assert len(followups) == 2 and any(c.json and c.json.get("multipart") for c in followups)
    assert all(c.json and c.json.get("flags") == 64 for c in followups)  # the text and the chart


async def test_a_private_answer_to_a_public_slash_command_is_a_follow_up_of_its_own(discord_bot: Harness) -> None:
    # Discord shows the first follow-up to a deferred response as the defer was (public for /image), whatever
    # its flags: the refusal, private, must not be that first follow-up.
    await discord_bot.adapter.on_command(interaction(discord_bot, "image"), "image", "a cat " * 10_000, None)
    assert public_texts(discord_bot) == [ANSWERED_PRIVATELY]
    [refusal] = [text for text in discord_bot.api.messages.values() if text.startswith(":warning:")]
    assert "characters" in refusal


async def test_slack_private_answers_by_mention_are_ephemeral(slack: SlackHarness) -> None:
    assert await slack.event(mention("<@UBOT> /dashboard", user="UBOSS")) == 200
    await until(lambda: bool(slack.api.called("chat.postEphemeral")))
    [ephemeral] = slack.api.called("chat.postEphemeral")
    assert ephemeral["user"] == "UBOSS" and "/dashboard/login?token=" in ephemeral["text"]
    assert not any("token=" in text for text in slack.api.messages.values())


async def test_slack_never_uploads_a_private_file_where_others_see_it(slack: SlackHarness) -> None:
    assert await slack.command("usage", "team", user="UBOSS") == 200
    await until(lambda: len(slack.api.responses) == 2)
    text, note = slack.api.responses
    assert text["response_type"] == note["response_type"] == "ephemeral"
    assert "team-spend-" in note["text"] and "not posted" in note["text"]
    assert slack.api.called("files.getUploadURLExternal") == [] and slack.api.uploads == []


async def test_console_users_sharing_a_channel_never_see_each_others_private_answers(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async def say(user_id: str, lines: str) -> str:
        out = io.StringIO()
        who = ConsoleIdentity(user_id=user_id, channel_id="shared", is_admin=True)
        await ConsoleAdapter(engine, who, stdin=io.StringIO(lines), stdout=out, files_dir=tmp_path).run()
        return out.getvalue()

    assert "/dashboard" in await say("ada", "/help\n/usage\n/quota show\n")  # on ada's terminal only
    await say("bob", "what did ada ask?\n")
    [request] = fake_openai.chat_requests()
    said = str(request["messages"])  # bob's turn in the shared channel: no command or answer of ada's is in it
    assert "Today: $" not in said and "/quota" not in said and "Defaults" not in said
