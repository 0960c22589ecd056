"""Slack, as an attacker would try it: the bot token stays on Slack's hosts, downloads are capped while they stream."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.slack.files import SlackFiles
from adapters.slack.mentions import neutralise
from bot.errors import BadAttachment
from storage import ConversationKey
from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_server import FakeOpenAI, ImageReply, Reply
from tests.harness.slack import Harness, final_text, mention, until
from tests.harness.slack import slack as slack_fixture

slack = slack_fixture  # the Slack app over signed HTTP, with its fake Web API (a fixture shared with test_slack)

TOKEN = "xoxb-test"
NOW = datetime(2026, 11, 24, tzinfo=UTC)


class FileHost(LoopbackServer):
    """A file server that records the Authorization header of every request and can redirect or stream."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization)
        self.sent = 0  # bytes written by /endless before the client hung up
        self.redirects: dict[str, str] = {}
        super().__init__(web.Application())
        self.app.router.add_get("/{name}", self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.seen.append((name, request.headers.get("Authorization")))
        if name in self.redirects:
            raise web.HTTPFound(self.redirects[name])
        if name == "endless":
            response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
            await response.prepare(request)
            try:
                for _ in range(2_000):  # 128 MB if nobody stops reading
                    await response.write(b"\xff\xfb" * 32_768)
                    self.sent += 65_536
            except (ConnectionResetError, RuntimeError):
                pass
            return response
        if name == "declared":
            return web.Response(body=b"x" * 10, headers={"Content-Type": "audio/mpeg", "Content-Length": "10"})
        return web.Response(body=b"ID3" + bytes(range(256)) * 20_000, content_type="audio/mpeg")  # ~5 MB


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[FileHost, FileHost]]:
    """A trusted host (standing in for SLACK_API_URL's) and another one on a different port."""
    async with FileHost() as trusted, FileHost() as other:
        yield trusted, other


async def test_the_token_is_not_sent_to_a_file_url_on_another_host(
    slack: Harness, fake_openai: FakeOpenAI, hosts: tuple[FileHost, FileHost]
) -> None:
    _, attacker = hosts
    file = {"id": "F1", "name": "memo.mp3", "mimetype": "audio/mpeg", "size": 100,
            "url_private": attacker.url("/memo.mp3")}  # fmt: skip
    await slack.event(mention("<@UBOT> /transcribe", ts="4000.1", files=[file]))
    await until(lambda: bool(slack.api.called("chat.postEphemeral")))
    assert attacker.seen == []  # not even asked, so no token
    assert "not on Slack's file server" in slack.api.called("chat.postEphemeral")[-1]["text"]


async def test_a_redirect_off_the_trusted_hosts_drops_the_token_and_one_within_keeps_it(
    hosts: tuple[FileHost, FileHost],
) -> None:
    trusted, other = hosts
    files = SlackFiles(TOKEN, trusted.url("/api/"))
    trusted.redirects = {"away": other.url("/cdn.mp3"), "here": "/real.mp3"}
    away = await files.download(trusted.url("/away"), 25 * 2**20)
    here = await files.download(trusted.url("/here"), 25 * 2**20)
    assert away == here and len(here) > 5_000_000
    assert other.seen == [("cdn.mp3", None)]
    assert trusted.seen == [("away", f"Bearer {TOKEN}"), ("here", f"Bearer {TOKEN}"), ("real.mp3", f"Bearer {TOKEN}")]


@pytest.mark.parametrize(
    "url",
    [
        "https://files.slack.com.evil.example/files-pri/T1/x.mp3",
        "https://evil.example/files.slack.com/x.mp3",
        "https://files.slack.com@evil.example/x.mp3",
        "http://files.slack.com/files-pri/T1/x.mp3",  # plain HTTP would show the token to the network
        "https://files.slack.com:8443/x.mp3",
        "file:///etc/passwd",
    ],
)
def test_only_slacks_own_file_origins_are_trusted(url: str) -> None:
    files = SlackFiles(TOKEN, "https://slack.com/api/")
    assert not files.trusted(url)
    assert files.trusted("https://files.slack.com/files-pri/T1-F1/x.mp3")


async def test_a_file_larger_than_one_network_read_arrives_whole(hosts: tuple[FileHost, FileHost]) -> None:
    trusted, _ = hosts
    data = await SlackFiles(TOKEN, trusted.url("/api/")).download(trusted.url("/big.mp3"), 25 * 2**20)
    assert data == b"ID3" + bytes(range(256)) * 20_000


async def test_the_size_cap_stops_a_download_while_it_streams(hosts: tuple[FileHost, FileHost]) -> None:
    trusted, _ = hosts
    files = SlackFiles(TOKEN, trusted.url("/api/"))
    with pytest.raises(BadAttachment, match="over the 1 MB limit"):
        await files.download(trusted.url("/endless"), 2**20)
    assert trusted.sent < 64 * 2**20  # the sender was cut off long before its 128 MB
    with pytest.raises(BadAttachment, match="over the 0 MB limit"):
        await files.download(trusted.url("/declared"), 5)  # refused from Content-Length, nothing read


# --- the bot pings no one ----------------------------------------------------------------------

PINGS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S1|@devs>", "<@U2>", "<@W3|boss>")
HOSTILE = "Sure! " + " ".join(PINGS)


def pinging_calls(harness: Harness) -> list[str]:
    """Every Web API call (and response_url answer) whose text would ping someone."""
    sent = [json.dumps(c.args) for c in harness.api.calls] + [json.dumps(r) for r in harness.api.responses]
    return [s for s in sent if any(p in s.replace("\\\\", "\\") for p in ("<!channel", "<!here", "<!everyone",
                                                                          "<!subteam", "<@U2", "<@W3"))]  # fmt: skip


async def test_a_streamed_reply_cannot_ping_even_when_a_mention_is_split_across_pieces(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(Reply(HOSTILE * 3, chunk_chars=3))
    await slack.event(mention())
    await until(lambda: bool(slack.api.called("chat.stopStream")))
    assert slack.api.called("chat.appendStream")  # it did stream in pieces
    assert pinging_calls(slack) == []
    assert "@\u2060channel" in final_text(slack.api)


@pytest.mark.parametrize("where", ["code block", "code span", "edits"])
async def test_code_and_edited_replies_cannot_ping(slack: Harness, fake_openai: FakeOpenAI, where: str) -> None:
    slack.api.refuse_streaming = True  # the chat.update path
    text = {"code block": f"```\n{HOSTILE}\n```", "code span": f"`{HOSTILE}`", "edits": HOSTILE}[where]
    fake_openai.enqueue(Reply(text, chunk_chars=4))
    await slack.event(mention())
    await until(lambda: any("@\u2060devs" in m for m in slack.api.messages.values()))
    assert pinging_calls(slack) == []


async def test_file_captions_and_command_answers_cannot_ping(slack: Harness, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue_images(ImageReply(revised_prompt=HOSTILE))
    await slack.command("image", "a cat")
    await until(lambda: bool(slack.api.called("files.completeUploadExternal")))
    fake_openai.enqueue(Reply(HOSTILE))
    await slack.command("ask", "say it")
    await until(lambda: any("@\u2060devs" in json.dumps(r) for r in slack.api.responses)
                or any("@\u2060devs" in m for m in slack.api.messages.values()))  # fmt: skip
    assert pinging_calls(slack) == []


def test_neutralise_keeps_the_text_readable() -> None:
    assert neutralise("hi <!here|here> and <!subteam^S1|@devs> and <@U2|ann>, <#C1|general>") == (
        "hi @\u2060here and @\u2060devs and @\u2060ann, <#C1|general>"
    )


# --- the signature first -----------------------------------------------------------------------


def _raw(port: int, body: bytes, headers: dict[str, str]) -> Any:
    async def send() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as response,
        ):
            return response.status

    return send()


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "v0=00"}, 401),
        (b"\xff\xfe\x00garbage", {"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "v0=00"}, 401),
        (b"payload=%7B", {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=00"}, 400),
        (b"{}", {"X-Slack-Request-Timestamp": "١٢٣", "X-Slack-Signature": "v0=00"}, 400),  # non-ASCII digits
        (b"{}", {}, 400),
        (b'{"type": "url_verification", "challenge": "x"}', {"X-Slack-Request-Timestamp": "NOW"}, 401),
    ],
)
async def test_unsigned_garbage_is_refused_before_bolt_parses_it_with_no_traceback(
    slack: Harness, caplog: pytest.LogCaptureFixture, body: bytes, headers: dict[str, str], status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    now = str(int(time.time()))
    sent = {k: v.replace("NOW", now) for k, v in headers.items()}
    assert await _raw(slack.port, body, {"Content-Type": "application/json", **sent}) == status
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("skew", [-301, 301, 10**9])
async def test_stale_and_future_signed_requests_are_refused(slack: Harness, skew: int) -> None:
    event = {"type": "event_callback", "team_id": "T1", "event_id": "Ev9", "event": mention()}
    body = json.dumps(event).encode()
    # Whole seconds away from the clock, rounded away from it: int(now) + 301 is only 300.x seconds ahead once the
    # clock has passed its next second (Slack's check allows 300), which made the future case flaky.
    at = time.time() + skew
    stamp = math.ceil(at) if skew > 0 else math.floor(at)
    assert await slack.post(body, "application/json", stamp=str(stamp)) == 401
    assert slack.api.called("chat.postMessage") == []


async def test_a_signed_request_with_a_wrong_secret_is_refused(slack: Harness) -> None:
    assert await slack.event(mention(), secret="guessed") == 401


# --- admins are a workspace's own ---------------------------------------------------------------


async def test_an_external_slack_connect_admin_is_not_an_admin_here(slack: Harness) -> None:
    slack.api.users["UEXT"] = {"is_admin": True, "team_id": "TOTHER"}  # an admin of their own workspace
    await slack.event(mention("<@UBOT> /quota show", user="UEXT", user_team="TOTHER"))
    await until(lambda: bool(slack.api.called("chat.postEphemeral")))
    assert "is for admins only" in slack.api.called("chat.postEphemeral")[-1]["text"]


async def test_admin_rights_are_cached_per_workspace(slack: Harness) -> None:
    slack.api.users["UBOSS"] = {"is_admin": True, "team_id": "T1"}
    await slack.event(mention("<@UBOT> /quota show", user="UBOSS", ts="1000.1"), "Ev1")
    await until(lambda: len(slack.api.called("chat.postEphemeral")) == 1)
    assert slack.api.called("chat.postEphemeral")[0]["text"].startswith("Defaults")  # an admin in T1
    # The same person in another workspace the app is installed in: not an admin there.
    event = {"token": "t", "team_id": "T2", "api_app_id": "A1", "type": "event_callback", "event_id": "Ev2",
             "event_time": 1, "event": mention("<@UBOT> /quota show", user="UBOSS", ts="1000.2"),
             "authorizations": [{"user_id": "UBOT", "is_bot": True, "team_id": "T2"}]}  # fmt: skip
    await slack.post(json.dumps(event).encode(), "application/json")
    await until(lambda: len(slack.api.called("chat.postEphemeral")) == 2)
    assert "is for admins only" in slack.api.called("chat.postEphemeral")[1]["text"]


# --- replays ----------------------------------------------------------------------------------


async def test_a_replayed_signed_slash_command_runs_once(slack: Harness, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue_images(ImageReply())
    assert await slack.command("image", "a cat", trigger="trig-7") == 200
    await until(lambda: bool(slack.api.called("files.completeUploadExternal")))
    assert await slack.command("image", "a cat", trigger="trig-7") == 200  # the same signed command, sent again
    await slack.command("usage")  # a later command (its own trigger_id) still runs
    await until(lambda: len(slack.api.responses) + len(slack.api.called("chat.postEphemeral")) >= 1)
    assert await slack.engine.drain(10) == 0
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1
    assert [state for *_, state in await slack.engine.store.ledger.ledger_rows("T1")] == ["settled"]


# --- deletions and edits reach storage and memory ----------------------------------------------


async def history_of(slack: Harness, thread: str = "1000.0001") -> list[str]:
    conv = await slack.engine.store.active_conversation(ConversationKey("slack", "T1", "C1", thread), NOW)
    return [m.content for m in await slack.engine.store.messages(conv.id)]


async def history_becomes(slack: Harness, expected: list[str], seconds: float = 15) -> None:
    """Wait until the thread's stored history is `expected` (bounds the wait; not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while (seen := await history_of(slack)) != expected:
        assert time.monotonic() < deadline, f"history stayed {seen}"
        await asyncio.sleep(0.01)


async def test_a_deleted_slack_message_leaves_history_with_its_reply(slack: Harness, fake_openai: FakeOpenAI) -> None:
    await slack.event(mention("<@UBOT> my prod password is hunter2"), "Ev1")
    await until(lambda: "echo: my prod password is hunter2" in slack.api.messages.values())
    assert await slack.engine.drain(10) == 0
    deleted = {"type": "message", "subtype": "message_deleted", "channel": "C1", "ts": "1000.0009",
               "deleted_ts": "1000.0001", "hidden": True, "previous_message": {"type": "message", "user": "U1",
               "ts": "1000.0001", "text": "<@UBOT> my prod password is hunter2"}}  # fmt: skip
    assert await slack.event(deleted, "Ev2") == 200
    await history_becomes(slack, [])


async def test_an_edited_slack_message_is_replaced_and_not_answered_again(
    slack: Harness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(mention("<@UBOT> my prod password is hunter2"), "Ev1")
    # The reply is stored once it is complete, just after Slack shows it: wait for the stored turn, not the
    # shown reply (reading history between the two made this test fail under load).
    await history_becomes(slack, ["my prod password is hunter2", "echo: my prod password is hunter2"])
    changed = {"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "1000.0010", "hidden": True,
               "message": {"type": "message", "user": "U1", "ts": "1000.0001", "text": "<@UBOT> my password is ***",
                           "edited": {"user": "U1", "ts": "1000.0010"}},
               "previous_message": {"type": "message", "user": "U1", "ts": "1000.0001",
                                    "text": "<@UBOT> my prod password is hunter2"}}  # fmt: skip
    assert await slack.event(changed, "Ev2") == 200
    await history_becomes(slack, ["my password is ***", "echo: my prod password is hunter2"])
    assert len(fake_openai.chat_requests()) == 1  # the edit started no answer
