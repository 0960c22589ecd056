"""Slack events as Slack sends them (shapes from docs.slack.dev's event reference), tried as people would.

Signed HTTP requests in, slack-sdk's real client out to the fake Web API (the harness of test_slack.py).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.adapter import SlackAdapter
from bot.app import open_engine
from tests.fakes.openai_server import FakeOpenAI, TranscriptionReply
from tests.fakes.slack_api import FakeSlack
from tests.harness.audio import make_audio
from tests.harness.slack import Harness, mention, slack, until

__all__ = ["slack"]  # the fixture, shared with test_slack.py


def now_ts(offset: float = 0) -> str:
    """A Slack ts for a message written `offset` seconds from now."""
    return f"{time.time() + offset:.6f}"


def channel_message(text: str, ts: str, **extra: Any) -> dict[str, Any]:
    """A `message` event in a public channel (message.channels)."""
    return {"type": "message", "channel": "C1", "user": "U1", "text": text, "ts": ts, "event_ts": ts,
            "channel_type": "channel", **extra}  # fmt: skip


async def answered(harness: Harness, fake_openai: FakeOpenAI, count: int) -> None:
    """Wait for `count` model calls, then a little longer to see that no more follow."""
    await until(lambda: len(fake_openai.chat_requests()) >= count)
    await harness.engine.drain(10)
    assert len(fake_openai.chat_requests()) == count


async def test_a_thread_reply_also_sent_to_the_channel_is_answered_once_in_the_thread(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    root = now_ts(-60)
    await slack.event(mention("<@UBOT> what is our freeze date?", ts=root), "Ev1")
    await until(lambda: len(fake_openai.chat_requests()) == 1)
    # docs.slack.dev/reference/events/message/thread_broadcast: no plain twin arrives for it.
    reply_ts = now_ts()
    first = {"type": "message", "user": "U1", "ts": root, "thread_ts": root, "reply_count": 1,
             "text": "<@UBOT> what is our freeze date?"}  # fmt: skip
    broadcast = channel_message(
        "and the release date?", reply_ts, subtype="thread_broadcast", thread_ts=root, client_msg_id="c1", root=first
    )
    await slack.event(broadcast, "Ev2")
    await slack.event(broadcast, "Ev2", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    await answered(slack, fake_openai, 2)
    assert fake_openai.chat_requests()[-1]["messages"][-1]["content"] == "and the release date?"
    assert {p["thread_ts"] for p in slack.api.called("chat.startStream")} == {root}  # in the thread, both times


@pytest.mark.parametrize(
    "event",
    [
        {"subtype": "reminder_add", "text": "set up a reminder “<@UBOT> check the build” in this channel at 9AM."},
        {"subtype": "pinned_item", "text": "<@U1> pinned a message to this channel.",
         "item_type": "C", "item": {"text": "<@UBOT> pin me"}},
        {"subtype": "channel_topic", "text": "<@U1> set the channel topic: ask <@UBOT>", "topic": "ask <@UBOT>"},
        {"subtype": "channel_join", "text": "<@UBOT> has joined the channel", "inviter": "U1"},
        {"subtype": "bot_message", "text": "<@UBOT> from another bot", "bot_id": "B2", "username": "ci"},
        {"subtype": "message_changed", "hidden": True, "message": {"type": "message", "user": "U1",
         "text": "<@UBOT> edited in", "ts": "1.1", "edited": {"user": "U1", "ts": "2.2"}},
         "previous_message": {"type": "message", "user": "U1", "text": "hello", "ts": "1.1"}},
    ],
    ids=["reminder_add", "pinned_item", "channel_topic", "channel_join", "bot_message", "message_changed"],
)  # fmt: skip
async def test_slacks_own_notices_that_quote_the_bots_mention_are_not_answered(
    slack: Harness, fake_openai: FakeOpenAI, event: dict[str, Any]
) -> None:
    assert await slack.event({**channel_message("", now_ts()), **event}) == 200
    await slack.event(mention("<@UBOT> a real question", ts=now_ts(1)), "Ev9")  # then something that is
    await answered(slack, fake_openai, 1)
    assert fake_openai.chat_requests()[0]["messages"][-1]["content"] == "a real question"


async def test_a_me_message_that_mentions_the_bot_is_answered(slack: Harness, fake_openai: FakeOpenAI) -> None:
    await slack.event(channel_message("waves at <@UBOT>", now_ts(), subtype="me_message"))
    await answered(slack, fake_openai, 1)


async def test_editing_a_question_never_starts_a_second_answer(slack: Harness, fake_openai: FakeOpenAI) -> None:
    recent = now_ts(-30)
    await slack.event(mention("<@UBOT> first wording", ts=recent), "Ev1")
    await until(lambda: len(fake_openai.chat_requests()) == 1)
    # Slack re-sends app_mention for an edited mention (with `edited`), plus a message_changed.
    edited = {"user": "U1", "ts": now_ts()}
    await slack.event(mention("<@UBOT> second wording", ts=recent, edited=edited), "Ev2")
    # A day-old question edited today: its claim is forgotten, the edit must still not be answered.
    old = now_ts(-2 * 86_400)
    await slack.event(mention("<@UBOT> old question, edited", ts=old, edited=edited), "Ev3")
    await answered(slack, fake_openai, 1)


async def test_slash_command_text_is_unescaped_and_people_are_named(slack: Harness, fake_openai: FakeOpenAI) -> None:
    slack.api.users["U3"] = {"profile": {"display_name": "Cyd"}}
    # Slack HTML-escapes & < > in `text`; with escaping on it writes people and channels as references.
    await slack.command("ask", "R&amp;D &lt;3 for <@U2|ann>, <@U3> in <#C9|ops>?")
    await until(lambda: bool(fake_openai.chat_requests()))
    assert fake_openai.chat_requests()[0]["messages"][-1]["content"] == "R&D <3 for @ann, @Cyd in #ops?"


async def test_ask_in_a_channel_the_bot_has_not_joined_answers_through_the_response_url(
    slack: Harness, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    slack.api.outside = {"COUTSIDE"}
    await slack.command("ask", "what is a monad?", channel="COUTSIDE")
    await until(lambda: bool(slack.api.responses))
    await slack.engine.drain(10)
    [answer] = slack.api.responses
    assert answer == {"text": "echo: what is a monad?", "response_type": "in_channel"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback, no generic failure


async def test_an_image_in_a_channel_the_bot_has_not_joined_says_to_invite_it(slack: Harness) -> None:
    slack.api.outside = {"COUTSIDE"}
    await slack.command("image", "a red kite", channel="COUTSIDE")
    await until(lambda: bool(slack.api.responses))
    await slack.engine.drain(10)
    [answer] = slack.api.responses
    assert answer["response_type"] == "ephemeral"
    assert "not a member of this channel" in answer["text"] and "/invite" in answer["text"]


async def test_the_transcribe_shortcut_in_a_channel_the_bot_has_not_joined_answers_through_its_response_url(
    slack: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    slack.api.outside = {"COUTSIDE"}
    slack.api.files["call.mp3"] = (make_audio(tmp_path / "call.mp3", 2).read_bytes(), "audio/mpeg")
    file = {"id": "F5", "name": "call.mp3", "mimetype": "audio/mpeg", "size": 100,
            "url_private": slack.api.url("/files/call.mp3")}  # fmt: skip
    # docs.slack.dev/reference/interaction-payloads/shortcuts-interactions-payload (message_action)
    payload = {"type": "message_action", "callback_id": "transcribe", "trigger_id": "trig9", "action_ts": "1.2",
               "team": {"id": "T1", "domain": "team"}, "channel": {"id": "COUTSIDE", "name": "ops"},
               "user": {"id": "U1", "username": "ann", "team_id": "T1"}, "message_ts": "6000.1",
               "response_url": slack.api.url("/response/shortcut"),
               "message": {"type": "message", "user": "U2", "ts": "6000.1", "text": "", "files": [file]}}  # fmt: skip
    fake_openai.enqueue_transcriptions(TranscriptionReply("The call, transcribed."))
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    assert await slack.post(body, "application/x-www-form-urlencoded") == 200
    await until(lambda: bool(slack.api.responses))
    assert slack.api.responses[0] == {"text": "The call, transcribed.", "response_type": "in_channel"}


def connect_file(file_id: str) -> dict[str, Any]:
    """A file shared through Slack Connect, as the event carries it (docs: message/file_share)."""
    return {"id": file_id, "mode": "file_access", "file_access": "check_file_info", "created": 0, "timestamp": 0,
            "user": ""}  # fmt: skip


async def test_a_slack_connect_file_is_fetched_through_files_info(
    slack: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    slack.api.files["memo.mp3"] = (make_audio(tmp_path / "memo.mp3", 2).read_bytes(), "audio/mpeg")
    slack.api.file_info["F7"] = {"id": "F7", "name": "memo.mp3", "mimetype": "audio/mpeg", "size": 100,
                                 "url_private": slack.api.url("/files/memo.mp3")}  # fmt: skip
    fake_openai.enqueue_transcriptions(TranscriptionReply("Shared from another org."))
    await slack.event(mention("<@UBOT> /transcribe", ts=now_ts(), subtype="file_share", files=[connect_file("F7")]))
    await until(lambda: "Shared from another org." in slack.api.messages.values())
    assert slack.api.called("files.info")[0]["file"] == "F7"


async def test_a_slack_connect_file_slack_will_not_share_is_explained(slack: Harness) -> None:
    await slack.event(mention("<@UBOT> /transcribe", ts=now_ts(), files=[connect_file("F404")]))
    await until(lambda: bool(slack.api.called("chat.postEphemeral")))
    text = slack.api.called("chat.postEphemeral")[0]["text"]
    assert "Slack did not let me read the file" in text and "Attach" not in text


async def test_a_voice_clip_in_a_dm_points_to_transcribe(slack: Harness, fake_openai: FakeOpenAI) -> None:
    clip = {"id": "F8", "name": "audio_message.webm", "mimetype": "audio/webm", "subtype": "slack_audio",
            "size": 100, "url_private": slack.api.url("/files/clip.webm")}  # fmt: skip
    dm = {"type": "message", "subtype": "file_share", "channel": "D1", "channel_type": "im", "user": "U1", "text": "",
          "ts": now_ts(), "files": [clip], "upload": False}  # fmt: skip
    await slack.event(dm)
    await until(lambda: bool(slack.api.called("chat.postMessage")))
    text = slack.api.called("chat.postMessage")[0]["text"]  # in the DM: a hint holds nothing private
    assert "/transcribe" in text and "TRANSCRIBE_VOICE_MESSAGES" in text and "after the mention" not in text
    assert fake_openai.chat_requests() == []


async def test_a_command_prefix_names_every_command(make_settings: Any) -> None:
    async with FakeSlack() as api:
        settings = make_settings(slack_bot_token="xoxb-test", command_prefix="tb-")
        async with open_engine(settings) as engine:
            adapter = SlackAdapter(engine, settings, client=AsyncWebClient(token="xoxb-test", base_url=api.base_url))
            help_ = {"token": "t", "team_id": "T1", "channel_id": "C1", "channel_name": "general", "user_id": "U1",
                     "command": "/tb-help", "text": "", "trigger_id": "tr1",
                     "response_url": api.url("/response/help")}  # fmt: skip
            response = await adapter.app.async_dispatch(
                AsyncBoltRequest(body=urllib.parse.urlencode(help_), mode="socket_mode")
            )
            assert response.status == 200
            plain = await adapter.app.async_dispatch(
                AsyncBoltRequest(body=urllib.parse.urlencode({**help_, "command": "/help"}), mode="socket_mode")
            )
            assert plain.status == 404  # another app's /help is not ours
            await until(lambda: bool(api.responses))
            await engine.drain(10)
    lines = api.responses[0]["text"].splitlines()
    assert (
        "  /tb-ask [voice=on|&lt;voice&gt;] &lt;question&gt; — a one-shot answer that is not part of the conversation"
        in lines
    )


async def test_a_normal_start_logs_no_warnings(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")  # bolt reads it too, and warned that it was unused
    # A normal start has a budget set (without one, start-up warns on purpose: see test_money_edges).
    settings = make_settings(slack_bot_token="xoxb-test", quota_team_monthly_usd="50")
    caplog.set_level(logging.INFO)
    async with open_engine(settings) as engine:
        SlackAdapter(engine, settings, client=AsyncWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/api/"))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
