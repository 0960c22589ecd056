"""Slack asks the asker to allow a tool that acts with Allow / Deny buttons in the thread: only the asker's
click answers, through Slack's real interactive payload (signed, as Slack posts it); no click in time is no."""

from __future__ import annotations

import asyncio
import json
import urllib.parse

from adapters.slack.responder import SlackResponder
from tests.harness.slack import Harness, slack, until

__all__ = ["slack"]  # the fixture, shared with test_slack.py

QUESTION = 'Allow team.create_ticket("title": "printer")? [y/N]'


def responder(harness: Harness) -> SlackResponder:
    return SlackResponder(
        harness.adapter.client, channel="C1", thread_ts="1000.0001", user_id="U1", approvals=harness.adapter.approvals
    )


async def click(harness: Harness, user: str, choice: str) -> int:
    """A button click as Slack posts it: a block_actions payload, signed."""
    asked = harness.api.called("chat.postMessage")[-1]
    button = next(b for b in asked["blocks"][1]["elements"] if b["value"].startswith(choice))
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": user}, "trigger_id": "tr-click",
               "channel": {"id": "C1"}, "container": {"type": "message", "message_ts": "1", "channel_id": "C1"},
               "actions": [{"type": "button", "action_id": button["action_id"], "value": button["value"],
                            "block_id": "b1", "action_ts": "1.1"}]}  # fmt: skip
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return await harness.post(body, "application/x-www-form-urlencoded")


async def ask(harness: Harness, seconds: float = 30) -> asyncio.Task[bool | None]:
    task = asyncio.create_task(responder(harness).ask_approval(QUESTION, "U1", seconds))
    await until(lambda: bool(harness.api.called("chat.postMessage")))
    return task


async def test_the_askers_allow_click_allows_and_the_question_says_so(slack: Harness) -> None:
    asked = await ask(slack)
    posted = slack.api.called("chat.postMessage")[-1]
    assert (posted["channel"], posted["thread_ts"], posted["text"]) == ("C1", "1000.0001", QUESTION)
    assert await click(slack, "U1", "allow") == 200
    assert await asked is True
    assert f"{QUESTION} (allowed)" in slack.api.messages.values()


async def test_another_persons_click_does_not_count(slack: Harness) -> None:
    asked = await ask(slack)
    assert await click(slack, "U2", "allow") == 200
    await asyncio.sleep(0)  # the click was handled (acked) above; the question still waits
    assert not asked.done()
    assert await click(slack, "U1", "deny") == 200
    assert await asked is False
    assert f"{QUESTION} (not allowed)" in slack.api.messages.values()


async def test_no_click_in_time_is_no(slack: Harness) -> None:
    asked = await ask(slack, seconds=0.2)
    assert await asked is None
    assert f"{QUESTION} (no answer in 0.2 s: not allowed)" in slack.api.messages.values()
    assert await click(slack, "U1", "allow") == 200  # too late: nothing waits for it any more
