"""/catchup on Slack: conversations.history and .replies read by slack-sdk's client against the fake Web API."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from storage.digests import DigestKey, DigestSchedule
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.harness.slack import Harness, mention, slack, until

__all__ = ["slack"]  # the harness fixture, shared with the Slack adapter's own tests


def recent(seconds_ago: float) -> str:
    return f"{time.time() - seconds_ago:.6f}"


def a_channel_with_a_thread(harness: Harness) -> dict[str, str]:
    api = harness.api
    api.users["UADA"] = {"profile": {"display_name": "Ada"}}
    api.users["UBEA"] = {"profile": {"real_name": "Bea Lin"}}
    ago = {"old": 3 * 3600, "plan": 3000, "join": 2900, "ask": 2000, "reply": 1000, "later": 500}
    ts = {name: recent(seconds) for name, seconds in ago.items()}
    api.add_history("C1", ts["old"], "UADA", "Yesterday's lunch order.")
    api.add_history("C1", ts["plan"], "UADA", "We ship the launch on Friday.")
    api.add_history("C1", ts["join"], "UBEA", "<@UBEA> has joined the channel", subtype="channel_join")
    api.add_history("C1", ts["ask"], "UBEA", "Who writes the release notes?")
    api.add_history("C1", ts["reply"], "UADA", "I will, by Thursday &amp; ask <@UBEA>.", thread_ts=ts["ask"])
    api.add_history("C1", ts["later"], "UBEA", "Thanks!", thread_ts=ts["ask"], subtype="thread_broadcast")
    return ts


async def test_slash_catchup_reads_every_page_through_a_429_and_answers_privately_with_permalinks(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    ts = a_channel_with_a_thread(slack)
    slack.api.history_page = 2  # paging is exercised
    # Retry-After: 0, waited out by slack-sdk each time (other calls give up after two).
    slack.api.failures["conversations.history"] = [429, 429, 429, 429]
    fake_openai.enqueue(Reply("Ada ships on Friday [1]; she writes the notes [3]."))
    assert await slack.command("catchup", "2h") == 200
    await until(lambda: bool(slack.api.responses))
    [answer] = slack.api.responses
    assert answer["response_type"] == "ephemeral"
    base = "https://acme.slack.example/archives/C1/p"
    link = f"{base}{ts['reply'].replace('.', '')}?thread_ts={ts['ask']}&amp;cid=C1"  # & escaped in mrkdwn
    assert answer["text"] == (
        f"Ada ships on Friday <https://acme.slack.example/archives/C1/p{ts['plan'].replace('.', '')}|1>;"
        f" she writes the notes <{link}|3>."
    )
    lines = [line.split(" ", 3)[3] for line in fake_openai.chat_requests()[0]["messages"][-1]["content"].splitlines()]
    assert lines == [
        "Ada: We ship the launch on Friday.",
        "Bea Lin: Who writes the release notes?",
        "Ada: I will, by Thursday & ask @Bea Lin.",
        "Bea Lin: Thanks!",
    ]  # the join notice is not the conversation; the 3-hour-old message is before `since`; the broadcast once
    assert len(slack.api.called("conversations.history")) >= 3
    # Nobody else in the channel sees that a catch-up ran: its progress went to the asker alone.
    assert slack.api.called("chat.postMessage") == [] and slack.api.messages == {}
    progress = slack.api.called("chat.postEphemeral")
    assert progress and progress[0]["text"].startswith("_reading history") and progress[0]["user"] == "U1"


async def test_a_mention_in_a_thread_catches_up_on_the_whole_thread(slack: Harness, fake_openai: FakeOpenAI) -> None:
    ts = a_channel_with_a_thread(slack)
    fake_openai.enqueue(Reply("Ada writes the notes."))
    asked = mention("<@UBOT> /catchup public", ts=recent(1), thread_ts=ts["ask"])
    assert await slack.event(asked) == 200
    await until(lambda: any("Ada writes the notes." in t for t in slack.api.messages.values()))
    replies = slack.api.called("conversations.replies")
    assert [(r["channel"], r["ts"]) for r in replies] == [("C1", ts["ask"])] and "oldest" not in replies[0]
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert "Who writes the release notes?" in content and "We ship the launch" not in content


async def test_a_channel_the_bot_is_not_in_is_refused_with_what_to_do(slack: Harness, fake_openai: FakeOpenAI) -> None:
    a_channel_with_a_thread(slack)
    slack.api.outside.add("C1")
    assert await slack.command("catchup", "1d") == 200
    await until(lambda: bool(slack.api.responses))
    assert "not a member of this channel, so I can't read its history" in slack.api.responses[-1]["text"]
    assert fake_openai.chat_requests() == []


async def test_the_bots_scheduler_posts_a_slack_channels_digest_with_chat_post_message(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    a_channel_with_a_thread(slack)
    fake_openai.enqueue(Reply("Ada ships on Friday [1]."))
    engine = slack.engine
    now = engine.now()
    due = f"{(now - timedelta(minutes=1)).astimezone(ZoneInfo(engine.settings.quota_timezone)):%H:%M}"
    key = DigestKey("slack", "T1", "C1")
    await engine.store.digests.set(DigestSchedule(key, "daily", None, due, "UBOSS", now - timedelta(days=2)))

    stop = asyncio.Event()
    async with engine.background(stop):  # the scheduler's first round runs at once
        await until(lambda: bool(slack.api.messages))
    [posted] = slack.api.called("chat.postMessage")
    assert posted["channel"] == "C1" and "thread_ts" not in posted
    assert posted["text"].startswith("Digest of this channel since ")
    assert "Ada ships on Friday <https://acme.slack.example/archives/C1/p" in posted["text"]
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert "Yesterday's lunch order." in content  # the first run covers one day


@pytest.mark.parametrize("slack_overrides", [{"catchup_max_messages": 12}])  # 12 kept, the 13th says there are more
async def test_a_channel_longer_than_the_cap_reads_only_the_pages_of_its_newest_messages(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    slack.api.users["UADA"] = {"profile": {"display_name": "Ada"}}
    for n in range(30):
        slack.api.add_history("C1", recent(3000 - n * 60), "UADA", f"Update {n}.")
    slack.api.history_page = 5
    fake_openai.enqueue(Reply("Ada sent updates [1]."))
    assert await slack.command("catchup", "2h") == 200
    await until(lambda: bool(slack.api.responses))
    assert len(slack.api.called("conversations.history")) == 3  # 13 messages in pages of 5, newest first; not 6
    [request] = fake_openai.chat_requests()
    lines = [line.split(" ", 3)[3] for line in request["messages"][-1]["content"].splitlines()]
    assert lines == [f"Ada: Update {n}." for n in range(18, 30)]
    answer = slack.api.responses[-1]["text"]
    assert answer.startswith("This covers the latest 12 messages of more than 12 since ")
