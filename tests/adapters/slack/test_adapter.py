"""The Slack adapter end to end: signed HTTP requests in, slack-sdk's real client out to a fake Web API."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import decode_text, message_from_event
from adapters.slack.responder import SlackResponder, slack_reply
from bot.chat.engine import Engine
from bot.messages import Author
from tests.fakes.openai_server import FakeOpenAI, Reply, TranscriptionReply
from tests.fakes.slack_api import FakeSlack
from tests.harness.audio import make_audio
from tests.harness.slack import Harness, final_text, mention, until


async def test_a_mention_is_acked_and_answered_in_a_thread_on_it(slack: Harness, fake_openai: FakeOpenAI) -> None:
    assert await slack.event(mention()) == 200
    await until(lambda: "echo: hello there" in final_text(slack.api))
    first = slack.api.called("chat.postMessage")[0]
    assert (first["channel"], first["thread_ts"]) == ("C1", "1000.0001")
    assert fake_openai.chat_requests()[0]["messages"][-1] == {"role": "user", "content": "hello there"}


async def test_one_mention_delivered_three_ways_is_answered_once(slack: Harness, fake_openai: FakeOpenAI) -> None:
    twin = {**mention(), "type": "message", "channel_type": "channel"}
    statuses = await asyncio.gather(
        slack.event(mention(), "Ev1"),
        slack.event(twin, "Ev2"),
        slack.event(mention(), "Ev1", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}),
    )
    assert list(statuses) == [200, 200, 200]
    await slack.event(mention("<@UBOT> second", ts="1000.0002"), "Ev3")
    await until(lambda: "echo: second" in slack.api.messages.values())
    assert [r["messages"][-1]["content"] for r in fake_openai.chat_requests()] == ["hello there", "second"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [({"secret": "forged"}, 401), ({"stamp": str(int(time.time()) - 400)}, 401), ({"stamp": "soon"}, 400)],
    ids=["forged", "stale", "bad-timestamp"],
)
async def test_unsigned_stale_and_malformed_requests_are_refused(
    slack: Harness, fake_openai: FakeOpenAI, kwargs: dict[str, Any], status: int
) -> None:
    assert await slack.event(mention(), **kwargs) == status
    await asyncio.sleep(0.2)
    assert fake_openai.chat_requests() == []


async def test_a_thread_reply_without_mention_continues_where_the_bot_is_talking(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(mention())
    await until(lambda: len(fake_openai.chat_requests()) == 1)
    follow_up = {"type": "message", "channel_type": "channel", "user": "U2", "text": "and more?",
                 "ts": "1000.0005", "thread_ts": "1000.0001", "channel": "C1"}  # fmt: skip
    elsewhere = {**follow_up, "ts": "2000.0002", "thread_ts": "2000.0001", "text": "not for the bot"}
    bot_echo = {**follow_up, "ts": "1000.0006", "bot_id": "BOTHER", "text": "from a bot"}
    edited = {**follow_up, "ts": "1000.0007", "subtype": "message_changed"}
    for i, event in enumerate((elsewhere, bot_echo, edited, follow_up)):
        await slack.event(event, f"Ev{10 + i}")
    await until(lambda: len(fake_openai.chat_requests()) == 2)
    await asyncio.sleep(0.2)
    sent = [m["content"] for m in fake_openai.chat_requests()[-1]["messages"][1:]]
    assert sent == ["hello there", "echo: hello there", "and more?"]
    assert len(fake_openai.chat_requests()) == 2


async def test_a_direct_message_is_a_conversation(slack: Harness, fake_openai: FakeOpenAI) -> None:
    dm = {
        "type": "message",
        "channel_type": "im",
        "user": "U1",
        "text": "hi in private",
        "ts": "3000.1",
        "channel": "D1",
    }
    await slack.event(dm)
    await until(lambda: bool(slack.api.called("chat.postMessage")))
    post = slack.api.called("chat.postMessage")[0]
    assert post["channel"] == "D1" and "thread_ts" not in post


async def test_slash_commands_are_acked_and_private_answers_are_ephemeral(slack: Harness) -> None:
    assert await slack.command("usage") == 200
    await until(lambda: bool(slack.api.responses))
    [usage] = slack.api.responses  # through the command's response_url
    assert usage["response_type"] == "ephemeral" and usage["text"].startswith("Today: $0.00")


async def test_commands_work_in_channels_the_bot_is_not_in(slack: Harness) -> None:
    slack.api.outside = {"COUTSIDE"}
    await slack.command("help", channel="COUTSIDE")  # private: straight to the response_url
    await slack.command("reset", channel="COUTSIDE")  # public: chat.postMessage refused, then the response_url
    await until(lambda: len(slack.api.responses) == 2)
    help_, reset = sorted(slack.api.responses, key=lambda r: r["response_type"])
    assert help_["response_type"] == "ephemeral" and help_["text"].startswith("Mention me")
    assert reset["response_type"] == "in_channel" and "nothing to reset" in reset["text"]
    assert slack.api.called("chat.postMessage")[-1]["channel"] == "COUTSIDE"  # tried first


@pytest.mark.parametrize(("user", "allowed"), [("U1", False), ("UADMIN", True), ("UBOSS", True)])
async def test_admins_come_from_users_info_or_the_setting(slack: Harness, user: str, allowed: bool) -> None:
    await slack.command("quota", "show", user=user)
    await until(lambda: bool(slack.api.responses))
    text = slack.api.responses[-1]["text"]
    assert (
        text.startswith("Defaults")
        if allowed
        else text
        == (
            ":warning: /quota is for admins only. Admins are the workspace's admins and owners and the users listed in"
            " SLACK_ADMIN_USERS."
        )
    )


async def test_a_long_reply_with_code_is_split_with_fences_intact(slack: Harness, fake_openai: FakeOpenAI) -> None:
    code = "\n".join(f"    step_{i} = compute({i})" for i in range(300))
    fake_openai.enqueue(Reply(f"Here it is:\n```python\n{code}\n```\nThat's all.", chunk_chars=400))
    await slack.event(mention())
    await until(lambda: final_text(slack.api).endswith("That's all."))
    messages = list(slack.api.messages.values())  # each message as it finally reads
    assert len(messages) >= 3
    assert all(len(text) <= 3_500 for text in messages)
    assert all(text.count("```") % 2 == 0 for text in messages)  # every message shows its code block closed
    assert all(text.startswith("```python\n") for text in messages[1:])


async def test_healthz_reports_the_database(slack: Harness) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{slack.port}/healthz") as response:
        assert (response.status, await response.json()) == (200, {"ok": True, "database": "reachable"})


async def test_an_audio_file_on_a_mention_is_transcribed_and_a_web_page_explained(
    slack: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    slack.api.files["memo.mp3"] = (make_audio(tmp_path / "memo.mp3", 3).read_bytes(), "audio/mpeg")
    slack.api.files["login.mp3"] = (b"<!DOCTYPE html><html>Sign in</html>", "text/html")
    fake_openai.enqueue_transcriptions(TranscriptionReply("Ship it on Friday."))

    def with_file(name: str, ts: str) -> dict[str, Any]:
        url = slack.api.url(f"/files/{name}")
        file = {"id": "F1", "name": name, "mimetype": "audio/mpeg", "size": 100, "url_private": url}
        return mention("<@UBOT> /transcribe", ts=ts, files=[file])

    await slack.event(with_file("memo.mp3", "4000.1"), "Ev1")
    await until(lambda: "Ship it on Friday." in slack.api.messages.values())
    await slack.event(with_file("login.mp3", "4000.2"), "Ev2")
    await until(lambda: bool(slack.api.called("chat.postEphemeral")))
    assert "lacks the files:read scope" in slack.api.called("chat.postEphemeral")[-1]["text"]


async def test_streaming_edits_are_throttled(make_settings: Any) -> None:
    async with FakeSlack() as api:
        now = [0.0]
        stream = slack_reply(AsyncWebClient(token="xoxb-test", base_url=api.base_url), "C1", "1.1",
                             interval=1.0, clock=lambda: now[0])  # fmt: skip
        for i in range(50):
            await stream.append(f"word{i} ")
            now[0] += 0.1  # 50 pieces over 5 seconds
        await stream.finish()
    assert len(api.called("chat.postMessage")) == 1
    assert stream.edits <= 6  # about one a second, plus the final one
    assert str(api.called("chat.update")[-1]["text"]).endswith("word49 ")


async def test_the_last_edit_also_keeps_to_the_edit_rate() -> None:
    async with FakeSlack() as api:
        stream = slack_reply(AsyncWebClient(token="xoxb-test", base_url=api.base_url), "C1", "1.1", interval=0.3)
        await stream.append("first")  # posted at once
        await stream.append(" second")  # too soon to edit: held
        await stream.finish()  # the edit waits out the rest of the interval
    [posted] = api.calls[-2:-1]
    [edited] = api.calls[-1:]
    assert (posted.method, edited.method) == ("chat.postMessage", "chat.update")
    assert edited.at - posted.at >= 0.29 and edited.args["text"] == "first second"


async def test_native_streaming_shows_the_first_text_at_once_then_appends_twice_a_second_at_most() -> None:
    async with FakeSlack() as api:
        responder = SlackResponder(AsyncWebClient(token="xoxb-test", base_url=api.base_url), channel="C1",
                                   thread_ts="1.1", user_id="U1", team_id="T1")  # fmt: skip
        stream = responder.stream()
        started = time.monotonic()
        await stream.append("Hi")
        assert [c.method for c in api.calls] == ["chat.startStream"]  # not held back for a buffer to fill
        for _ in range(60):  # 1.2 s of pieces (longer on a busy machine)
            await stream.append(" more")
            await asyncio.sleep(0.02)
        await stream.finish()
        elapsed = time.monotonic() - started
    appends = [c.at for c in api.calls if c.method == "chat.appendStream"]
    # One every half second at most while streaming, plus the last flush from finish().
    assert 2 <= len(appends) <= elapsed / 0.5 + 1
    assert all(later - earlier >= 0.45 for earlier, later in itertools.pairwise(appends[:-1]))
    assert api.calls[-1].method == "chat.stopStream"


async def test_a_stream_refused_midway_continues_with_the_rest_only_below_it() -> None:
    async with FakeSlack() as api:
        responder = SlackResponder(AsyncWebClient(token="xoxb-test", base_url=api.base_url), channel="C1",
                                   thread_ts="1.1", user_id="U1", team_id="T1", interval=0)  # fmt: skip
        await responder.show_status("thinking…")
        [placeholder] = list(api.messages)
        stream = responder.stream()
        await stream.append("Here:\n```python\nx = 1\n")
        api.failures = {"chat.appendStream": [400], "chat.stopStream": [400]}  # Slack gives up on the stream
        await asyncio.sleep(0.55)
        await stream.append("y = 2\n```\nDone.")
        await stream.finish()
    streamed, rest = [text for ts, text in api.messages.items() if ts != placeholder]
    assert streamed == "Here:\n```python\nx = 1\n"  # what the stream showed stays
    assert rest == "```python\ny = 2\n```\nDone."  # only the rest, its code block reopened
    assert [c["ts"] for c in api.called("chat.delete")] == [placeholder]


def test_slack_markup_is_decoded_and_the_bot_mention_removed() -> None:
    text = "<@UBOT> ask <@U2|ann> in <#C9|ops> about <https://x.io|the doc> &amp; <!here>"
    assert decode_text(text, "UBOT") == "ask @ann in #ops about the doc (https://x.io) & @here"


def test_a_command_in_a_mention_keeps_its_channel_argument() -> None:
    event = {"channel": "C1", "ts": "5.1", "user": "U2", "text": "<@UBOT> /search freeze channel:<#C9|ops>"}
    message = message_from_event(event, team_id="T1", bot_user_id="UBOT", author=Author("U2", "ann"),
                                 download=None, max_bytes=0)  # type: ignore[arg-type]  # fmt: skip
    assert message.text == "/search freeze channel:#ops"  # what people read
    assert message.command is not None and message.command.args == ("freeze", "channel:<#C9|ops>")


async def test_the_ack_comes_back_while_a_slow_model_is_still_answering(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(Reply("slow and steady", chunk_chars=1, delay_between_chunks=0.1))  # ~1.5 s
    assert await slack.event(mention()) == 200
    assert final_text(slack.api) != "slow and steady"  # acked first, answered after
    await until(lambda: final_text(slack.api) == "slow and steady")
    assert slack.api.called("chat.postMessage")[0]["text"] == "_thinking…_"  # the status line it replaced


async def test_image_is_uploaded_into_the_thread(slack: Harness) -> None:
    await slack.event(mention("<@UBOT> /image a red kite"))
    await until(lambda: bool(slack.api.called("files.completeUploadExternal")))
    [complete] = slack.api.called("files.completeUploadExternal")
    assert (complete["channel_id"], complete["thread_ts"]) == ("C1", "1000.0001")
    assert slack.api.uploads[0].startswith(b"\x89PNG")


async def test_the_same_conversation_gives_the_same_outcome_on_console_and_slack(
    slack: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    """One script through two adapters: the engine sends the model the same history both ways."""
    import io

    from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity

    script = ["my name is Ada", "what is my name?"]
    for i, line in enumerate(script):
        await slack.event(mention(f"<@UBOT> {line}", ts="5000.0001") if i == 0 else
                          {"type": "message", "channel_type": "channel", "user": "U1", "text": line,
                           "ts": f"5000.000{i + 1}", "thread_ts": "5000.0001", "channel": "C1"}, f"Ev{i}")  # fmt: skip
        await until(lambda n=i: len(fake_openai.chat_requests()) == n + 1)  # type: ignore[misc]
    await until(lambda: final_text(slack.api) == "echo: what is my name?")
    via_slack = fake_openai.chat_requests()[-1]["messages"]
    out = io.StringIO()
    await ConsoleAdapter(slack.engine, ConsoleIdentity(), stdin=io.StringIO("\n".join(script) + "\n"), stdout=out,
                         files_dir=tmp_path).run()  # fmt: skip
    via_console = fake_openai.chat_requests()[-1]["messages"]
    assert via_console == via_slack
    assert out.getvalue().splitlines() == ["echo: my name is Ada", "echo: what is my name?"]


async def test_the_transcribe_command_takes_the_users_latest_audio_file(
    slack: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    slack.api.files["standup.mp3"] = (make_audio(tmp_path / "standup.mp3", 2).read_bytes(), "audio/mpeg")
    slack.api.listed_files = [
        {"id": "F9", "name": "notes.pdf", "mimetype": "application/pdf", "url_private": slack.api.url("/files/x")},
        {"id": "F8", "name": "standup.mp3", "mimetype": "audio/mpeg", "size": 100,
         "url_private": slack.api.url("/files/standup.mp3")},
    ]  # fmt: skip
    fake_openai.enqueue_transcriptions(TranscriptionReply("Standup notes."))
    assert await slack.command("transcribe", "language=en") == 200
    await until(lambda: "Standup notes." in slack.api.messages.values())
    [listing] = slack.api.called("files.list")
    assert (listing["channel"], listing["user"]) == ("C1", "U1")


async def test_threads_stream_natively_with_the_recipient(slack: Harness, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply("streamed " * 100, chunk_chars=50))
    await slack.event(mention())
    # the placeholder is deleted after the stream stops: wait for both
    await until(lambda: bool(slack.api.called("chat.stopStream")) and len(slack.api.messages) == 1)
    [start] = slack.api.called("chat.startStream")
    assert (start["channel"], start["thread_ts"], start["recipient_user_id"], start["recipient_team_id"]) == (
        "C1", "1000.0001", "U1", "T1"
    )  # fmt: skip
    await until(lambda: bool(slack.api.called("chat.delete")))  # right after chat.stopStream
    assert list(slack.api.messages.values()) == ["streamed " * 100]  # the placeholder was deleted
    assert slack.api.called("chat.update") == []


async def test_where_streaming_is_refused_the_reply_falls_back_to_edits(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    slack.api.refuse_streaming = True
    fake_openai.enqueue(Reply("fallback " * 50, chunk_chars=40))
    await slack.event(mention())
    await until(lambda: "fallback " * 50 in slack.api.messages.values())
    assert slack.api.called("chat.startStream") and slack.api.called("chat.update")
    assert len(slack.api.messages) == 1  # the "thinking…" placeholder became the answer


async def test_a_long_native_stream_stops_at_a_break_and_continues_in_new_messages(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    code = "\n".join(f"    value_{i} = compute({i})" for i in range(300))
    answer = f"Intro.\n\n```python\n{code}\n```\nEnd."
    fake_openai.enqueue(Reply(answer, chunk_chars=200))
    await slack.event(mention())
    await until(lambda: any(text.endswith("End.") for text in slack.api.messages.values()))
    messages = list(slack.api.messages.values())
    assert len(messages) >= 3 and all(len(m) <= 3_500 for m in messages)
    assert all(m.count("```") % 2 == 0 for m in messages)
    assert slack.api.called("chat.stopStream")  # the first message was streamed, then stopped


async def test_the_transcribe_shortcut_transcribes_that_messages_file(
    slack: Harness, fake_openai: FakeOpenAI, tmp_path: Any
) -> None:
    slack.api.files["call.mp3"] = (make_audio(tmp_path / "call.mp3", 2).read_bytes(), "audio/mpeg")
    file = {"id": "F5", "name": "call.mp3", "mimetype": "audio/mpeg", "size": 100,
            "url_private": slack.api.url("/files/call.mp3")}  # fmt: skip
    payload = {"type": "message_action", "callback_id": "transcribe", "trigger_id": "trig1",
               "team": {"id": "T1"}, "channel": {"id": "C1"}, "user": {"id": "U1"},
               "message": {"type": "message", "user": "U2", "ts": "6000.1", "text": "", "files": [file]}}  # fmt: skip
    fake_openai.enqueue_transcriptions(TranscriptionReply("The call, transcribed."))
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    assert await slack.post(body, "application/x-www-form-urlencoded") == 200
    await until(lambda: "The call, transcribed." in slack.api.messages.values())
    reply = next(c for c in slack.api.called("chat.postMessage"))
    assert reply["thread_ts"] == "6000.1"


def test_the_manifest_has_the_transcribe_shortcut() -> None:
    import yaml

    from adapters.slack.manifest import TRANSCRIBE_SHORTCUT
    from tests.harness.slack_manifest import MANIFEST

    shortcuts = yaml.safe_load(MANIFEST.read_text())["features"]["shortcuts"]
    assert [s["callback_id"] for s in shortcuts] == [TRANSCRIBE_SHORTCUT]


async def test_slack_rate_limits_and_server_errors_are_retried(slack: Harness, fake_openai: FakeOpenAI) -> None:
    slack.api.failures = {"chat.postMessage": [500], "chat.startStream": [429]}
    await slack.event(mention())
    await until(lambda: "echo: hello there" in slack.api.messages.values())
    assert [c.method for c in slack.api.calls].count("chat.startStream") == 2  # the 429, then the retry


async def test_a_slack_api_that_keeps_failing_does_not_hang_the_engine(slack: Harness, fake_openai: FakeOpenAI) -> None:
    from tests.harness.conversations import history
    from tests.harness.messages import message

    slack.api.broken = {"chat.postMessage", "chat.update", "chat.delete", "chat.postEphemeral", "chat.startStream",
                        "chat.appendStream", "chat.stopStream"}  # Slack cannot take any answer, for good  # fmt: skip
    await slack.event(mention())
    await until(lambda: bool(slack.api.called("chat.postEphemeral")))  # it even tried to tell the user
    engine: Engine = slack.engine
    assert await engine.drain(10) == 0  # the turn ended (errors logged), nothing stuck
    key = message("x", platform="slack", team="T1", channel="C1", thread="1000.0001").conversation_key
    assert (await history(engine.settings, key))[0] == ("user", "hello there")  # the question is kept
    # Nothing charged: the status line failed before the call was sent, so the reservation written with the
    # question was given back (its one row released at no cost), and nothing is held.
    assert await engine.store.ledger.ledger_rows("T1") == [("chat", "gpt-4.1-mini", 0, "released")]


async def test_an_image_on_a_mention_is_seen_and_one_on_image_is_edited(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.openai_server import image_parts
    from tests.harness.vision import png

    slack.api.files["chart.png"] = (png(40, 30), "image/png")
    file = {"id": "F2", "name": "chart.png", "mimetype": "image/png", "size": 100,
            "url_private": slack.api.url("/files/chart.png")}  # fmt: skip
    await slack.event(mention("<@UBOT> what does this show?", ts="7000.1", files=[file]), "EvImg1")
    await until(lambda: bool(fake_openai.chat_requests()) and "image(s)]" in final_text(slack.api))
    [part] = image_parts(fake_openai.chat_requests()[-1])
    assert part["image_url"]["url"].startswith("data:image/png;base64,")  # our bytes, never url_private
    await slack.event(mention("<@UBOT> /image make it blue", ts="7000.2", files=[file]), "EvImg2")
    await until(lambda: bool(fake_openai.edit_uploads) and bool(slack.api.called("files.completeUploadExternal")))
    assert fake_openai.edit_uploads[0]["image"] == ("chart.png", png(40, 30))
