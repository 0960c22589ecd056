"""The bot in Slack's assistant pane: signed assistant_thread_* and DM thread events through bolt's Assistant."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from adapters.slack.assistant import CATCH_ME_UP, NEEDS_A_CHANNEL
from storage import ConversationKey
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.harness.slack import Harness, slack, until
from tests.harness.slack_assistant import PANE, THREAD, context_changed, pane_message, thread_started

__all__ = ["slack"]  # the harness fixture


@pytest.fixture
def slack_overrides() -> dict[str, Any]:
    return {"catchup_excluded_channels": "CHR"}


def recent(seconds_ago: float) -> str:
    return f"{time.time() - seconds_ago:.6f}"


def two_channels(harness: Harness) -> dict[str, str]:
    """#general (C1) and #design (C2), both public, U1 a member of neither; each with its own talk."""
    api = harness.api
    api.users["UADA"] = {"profile": {"display_name": "Ada"}}
    api.channels["C1"] = {"id": "C1", "name": "general", "is_channel": True}
    api.channels["C2"] = {"id": "C2", "name": "design", "is_channel": True}
    ts = {"general": recent(3000), "design": recent(2000), "reply": recent(1000)}
    api.add_history("C1", ts["general"], "UADA", "Lunch is at noon.")
    api.add_history("C2", ts["design"], "UADA", "The new logo is blue.")
    api.add_history("C2", ts["reply"], "UADA", "Approved by Bea.", thread_ts=ts["design"])
    return ts


def pane_posts(harness: Harness) -> list[dict[str, Any]]:
    return [c for c in harness.api.called("chat.postMessage") if c["channel"] == PANE]


async def test_a_new_pane_thread_is_offered_a_catch_up_and_a_chat_prompt(slack: Harness) -> None:
    assert await slack.event(thread_started("C1")) == 200
    await until(lambda: bool(slack.api.pane("prompts")))
    [prompts] = slack.api.pane("prompts")
    assert prompts[0] == CATCH_ME_UP and len(prompts) >= 2
    [call] = slack.api.called("assistant.threads.setSuggestedPrompts")
    assert (call["channel_id"], call["thread_ts"]) == (PANE, THREAD)


async def test_catch_me_up_reads_the_channel_now_viewed_and_answers_in_the_pane_with_permalinks(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    ts = two_channels(slack)
    assert await slack.event(thread_started("C1"), event_id="Ev1") == 200
    assert await slack.event(context_changed("C2"), event_id="Ev2") == 200
    await until(lambda: bool(slack.api.pane("prompts")))
    fake_openai.enqueue(Reply("The logo is blue [1], approved [2]."))
    assert await slack.event(pane_message(CATCH_ME_UP, recent(1)), event_id="Ev3") == 200
    await until(lambda: bool(pane_posts(slack)) and slack.api.pane("status")[-1:] == [""])

    assert {c["channel"] for c in slack.api.called("conversations.history")} == {"C2"}
    [answer] = pane_posts(slack)
    assert answer["thread_ts"] == THREAD
    base = "https://acme.slack.example/archives/C2/p"
    assert f"<{base}{ts['design'].replace('.', '')}|1>" in answer["text"]
    assert f"<{base}{ts['reply'].replace('.', '')}?thread_ts={ts['design']}&amp;cid=C2|2>" in answer["text"]
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert "The new logo is blue." in content and "Lunch" not in content
    statuses = slack.api.pane("status")
    assert statuses[0] == "is reading #design…" and "is summarizing…" in statuses and statuses[-1] == ""
    assert slack.api.pane("title") == [CATCH_ME_UP]
    # What it cost, as the ledger has it (one model call: the whole history fits one part).
    [row] = await slack.engine.store.ledger.usage("T1", "2000-01-01")
    assert (row.user_id, row.kind, row.calls) == ("U1", "chat", 1)
    print(f"pane catch-up: {row.calls} call, {row.input_tokens} in, {row.output_tokens} out, {row.cost_nanos} nUSD")


async def test_a_catchup_typed_in_the_pane_takes_its_since(slack: Harness, fake_openai: FakeOpenAI) -> None:
    two_channels(slack)
    await slack.event(thread_started("C2"), event_id="Ev1")
    await slack.event(pane_message("/catchup 30m", recent(1)), event_id="Ev2")
    await until(lambda: bool(pane_posts(slack)))
    [read] = slack.api.called("conversations.history")
    assert read["channel"] == "C2" and float(read["oldest"]) > time.time() - 31 * 60
    # #design's talk began 33 minutes ago: nothing since, and nothing spent saying so.
    assert pane_posts(slack)[0]["text"].startswith("Nothing to catch up on: no messages in this channel since")
    assert fake_openai.chat_requests() == []


async def test_a_private_channel_the_asker_is_not_in_is_refused_before_anything_is_read(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    slack.api.channels["G1"] = {"id": "G1", "name": "secret", "is_channel": True, "is_private": True}
    slack.api.add_history("G1", recent(100), "UADA", "Salaries.")
    slack.api.memberships["U1"] = ["C1"]
    await slack.event(thread_started("G1"), event_id="Ev1")
    await slack.event(pane_message(CATCH_ME_UP, recent(1)), event_id="Ev2")
    await until(lambda: bool(pane_posts(slack)))
    assert "You cannot read that conversation" in pane_posts(slack)[0]["text"]
    assert slack.api.called("conversations.history") == [] and fake_openai.chat_requests() == []
    assert all("secret" not in status for status in slack.api.pane("status"))


async def test_an_excluded_channel_is_refused(slack: Harness, fake_openai: FakeOpenAI) -> None:
    slack.api.channels["CHR"] = {"id": "CHR", "name": "hr", "is_channel": True}
    await slack.event(thread_started("CHR"), event_id="Ev1")
    await slack.event(pane_message(CATCH_ME_UP, recent(1)), event_id="Ev2")
    await until(lambda: bool(pane_posts(slack)))
    assert "CATCHUP_EXCLUDED_CHANNELS" in pane_posts(slack)[0]["text"]
    assert slack.api.called("conversations.history") == [] and fake_openai.chat_requests() == []


async def test_catch_me_up_without_a_channel_open_says_so(slack: Harness, fake_openai: FakeOpenAI) -> None:
    await slack.event(thread_started(None), event_id="Ev1")
    await slack.event(pane_message("catch me up on this channel!", recent(1)), event_id="Ev2")
    await until(lambda: bool(pane_posts(slack)))
    assert pane_posts(slack)[0]["text"] == NEEDS_A_CHANNEL
    assert slack.api.called("conversations.history") == [] and fake_openai.chat_requests() == []


async def test_a_catchup_typed_with_no_channel_open_catches_up_on_the_pane_thread_itself(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    slack.api.users["U1"] = {"profile": {"display_name": "Ada"}}
    slack.api.add_history(PANE, THREAD, "U1", "Which vendor did we pick for the logo?")
    slack.api.add_history(PANE, recent(600), "UBOT", "Acme Design, approved on Monday.", thread_ts=THREAD)
    fake_openai.enqueue(Reply("Acme Design was picked for the logo [2]."))
    await slack.event(thread_started(None), event_id="Ev1")
    await slack.event(pane_message("/catchup", recent(1)), event_id="Ev2")
    await until(lambda: bool(pane_posts(slack)))
    [read] = slack.api.called("conversations.replies")
    assert (read["channel"], read["ts"]) == (PANE, THREAD) and slack.api.called("conversations.history") == []
    content = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert "Ada: Which vendor did we pick for the logo?" in content and "Acme Design, approved" in content
    [answer] = pane_posts(slack)
    assert answer["thread_ts"] == THREAD and answer["text"].startswith("Acme Design was picked for the logo")
    assert answer["text"] != NEEDS_A_CHANNEL


async def test_context_survives_a_restart_of_the_adapter(slack: Harness, fake_openai: FakeOpenAI) -> None:
    two_channels(slack)
    await slack.event(thread_started("C2"), event_id="Ev1")
    await until(lambda: bool(slack.api.pane("prompts")))
    # What the pane remembers is in the database, not in the process: a new process reads it back.
    viewed = await slack.engine.store.assistant_threads.viewed(PANE, THREAD)
    assert viewed is not None and (viewed.channel_id, viewed.team_id, viewed.enterprise_id) == ("C2", "T1", "E1")


async def test_a_plain_question_is_a_chat_turn_remembered_in_the_pane_thread(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(thread_started("C1"), event_id="Ev1")
    fake_openai.enqueue(Reply("Paris."), Reply("About two million."))
    await slack.event(pane_message("What is the capital of France?", recent(2)), event_id="Ev2")
    await until(lambda: len(fake_openai.chat_requests()) == 1 and slack.api.pane("status")[-1:] == [""])
    await slack.event(pane_message("How many people live there?", recent(1)), event_id="Ev3")
    await until(lambda: len(fake_openai.chat_requests()) == 2 and len(slack.api.pane("status")) >= 4)
    said = [m["content"] for m in fake_openai.chat_requests()[1]["messages"] if m["role"] != "system"]
    assert said[-3:] == ["What is the capital of France?", "Paris.", "How many people live there?"]
    assert slack.api.pane("title") == ["What is the capital of France?"]  # the first question only
    assert "is thinking…" in slack.api.pane("status")
    assert slack.api.called("conversations.history") == []


async def test_a_bot_message_or_a_retried_delivery_is_answered_once(slack: Harness, fake_openai: FakeOpenAI) -> None:
    await slack.event(thread_started("C1"), event_id="Ev1")
    await slack.event(pane_message("An app says hi", recent(3), bot_id="B9"), event_id="Ev2")
    question = pane_message("Hello?", recent(2))
    await slack.event(question, event_id="Ev3")
    await slack.event(question, event_id="Ev3", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    fake_openai.enqueue(Reply("Hi."))
    await slack.event(pane_message("Still there?", recent(1)), event_id="Ev4")  # a later question marks the end
    await until(lambda: len(fake_openai.chat_requests()) >= 2 and slack.api.pane("status")[-1:] == [""])
    asked = sorted(r["messages"][-1]["content"] for r in fake_openai.chat_requests())  # handled concurrently
    assert asked == ["Hello?", "Still there?"]


async def test_an_edit_in_a_pane_thread_still_reaches_the_stored_conversation(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(thread_started("C1"), event_id="Ev1")
    asked = recent(2)
    await slack.event(pane_message("What is the capitol of France?", asked), event_id="Ev2")
    await until(lambda: slack.api.pane("status")[-1:] == [""] and bool(fake_openai.chat_requests()))
    edit = {"type": "message", "subtype": "message_changed", "channel": PANE, "channel_type": "im",
            "ts": recent(1), "message": {"type": "message", "user": "U1", "text": "What is the capital of France?",
                                         "ts": asked, "thread_ts": THREAD},
            "previous_message": {"type": "message", "user": "U1", "text": "What is the capitol of France?",
                                 "ts": asked, "thread_ts": THREAD}}  # fmt: skip
    await slack.event(edit, event_id="Ev3")
    key = ConversationKey("slack", "T1", PANE, THREAD)
    stored: list[str] = []
    for _ in range(1500):  # bounds the wait for the work after the ack; not a timing assertion
        stored = [m.content for m in await slack.engine.stored_messages(key) if m.role == "user"]
        if stored == ["What is the capital of France?"]:
            break
        await asyncio.sleep(0.01)
    assert stored == ["What is the capital of France?"]  # bolt's Assistant alone would have dropped the edit
