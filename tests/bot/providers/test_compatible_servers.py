"""Self-hosted OpenAI-compatible servers and gateways: their recorded errors, links instead of images,
connections that never reached them. Everything runs through the real `openai` client on loopback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bot.app import open_engine
from bot.errors import GatewayBudgetSpent, ModelUnavailable
from bot.providers.errors import FaultLog
from bot.providers.llm import PromptMessage
from bot.providers.openai_chat import OpenAIChat, make_client
from tests.fakes.openai_server import (
    LITELLM_BUDGET_EXCEEDED,
    LITELLM_UNKNOWN_MODEL,
    OLLAMA_UNKNOWN_MODEL,
    TINY_PNG,
    VLLM_CONTEXT_TOO_LONG,
    VLLM_UNKNOWN_MODEL,
    FakeOpenAI,
    FullBacklog,
    RefusingPort,
    Reply,
    Stall,
)
from tests.fakes.responder import RecordingResponder
from tests.harness.media import ledger
from tests.harness.messages import message

APOLOGY = "Sorry, I can't do that right now: the bot's model settings need an admin's attention."
UNKNOWN = [LITELLM_UNKNOWN_MODEL, OLLAMA_UNKNOWN_MODEL, VLLM_UNKNOWN_MODEL]


@pytest.mark.parametrize("recorded", UNKNOWN, ids=["litellm-400", "ollama-404", "vllm-404"])
async def test_a_model_the_server_lacks_is_an_apology_for_users_and_names_the_setting_for_admins(
    make_settings: Any, fake_openai: FakeOpenAI, recorded: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.enqueue(recorded, recorded)
    user, admin = RecordingResponder(), RecordingResponder()
    async with open_engine(make_settings(openai_max_retries=2)) as engine:
        await engine.handle(message("hello"), user)
        await engine.handle(message("hello", admin=True, user="boss"), admin)
    assert user.errors == [APOLOGY]
    [told] = admin.errors
    assert told.startswith(APOLOGY + "\nThe model server has no model 'gpt-4.1-mini' (named by CHAT_MODEL).")
    assert "Invalid model name" not in told
    assert len(fake_openai.chat_requests()) == 2  # never retried
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["The model server has no model 'gpt-4.1-mini' (named by CHAT_MODEL). "
                      "Set CHAT_MODEL to a model it serves (its /v1/models lists them)."]  # fmt: skip


async def test_a_gateways_spent_budget_is_not_retried_not_a_rate_limit_and_logged_once(
    make_settings: Any, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.enqueue(*[LITELLM_BUDGET_EXCEEDED] * 3)
    responder = RecordingResponder()
    # A budget of our own is set, so the only warning is the gateway's (no budget warns at start-up).
    async with open_engine(make_settings(openai_max_retries=2, quota_team_monthly_usd="50")) as engine:
        for n in range(3):
            await engine.handle(message(f"question {n}", user=f"u{n}"), responder)
    assert (
        responder.errors
        == [
            "The model gateway in front of this bot has spent the budget it allows the bot; answers resume "
            "when that budget resets or an admin raises it."
        ]
        * 3
    )
    assert len(fake_openai.chat_requests()) == 3  # one call per question: no retry
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "The gateway at OPENAI_BASE_URL refuses with its budget spent: "
        "Budget has been exceeded! Current cost: 0.0104, Max budget: 0.01"
    ]


async def test_the_gateway_budget_is_logged_again_after_an_hour_with_the_count_in_between(
    make_settings: Any, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    client = make_client(make_settings())
    chat = OpenAIChat(client, max_retries=2, faults=FaultLog(period=3_600, clock=lambda: now[0]))
    fake_openai.enqueue(*[LITELLM_BUDGET_EXCEEDED] * 4)
    try:
        for seconds in (0, 10, 20, 3_601):
            now[0] = seconds
            with pytest.raises(GatewayBudgetSpent):
                await chat.chat([PromptMessage("user", "hi")], model="gpt-4.1-mini", max_output_tokens=50)
    finally:
        await client.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lines) == 2 and lines[1].endswith("(2 more time(s) since the last report)")


async def test_a_self_hosted_context_error_without_a_code_is_told_as_context_too_long(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(VLLM_CONTEXT_TOO_LONG)
    responder = RecordingResponder()
    async with open_engine(make_settings()) as engine:
        await engine.handle(message("hello"), responder)
    [error] = responder.errors
    assert error.startswith("This conversation is longer than the model can read.")


# --- connections that never reached the server ---------------------------------------------------


async def say_hi(chat: OpenAIChat, server: FakeOpenAI, client: Any) -> str:
    """One chat call's text; the server and the client are stopped whatever happens."""
    try:
        result = await chat.chat([PromptMessage("user", "hi")], model="gpt-4.1-mini", max_output_tokens=50)
    finally:
        await server.stop()
        await client.close()
    return result.text


async def test_a_refused_connection_is_retried_and_the_answer_arrives(make_settings: Any) -> None:
    port = RefusingPort()
    server = FakeOpenAI()
    sleeps: list[float] = []

    async def server_comes_back(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            await server.start(port.port)

    client = make_client(make_settings(openai_base_url=port.base_url))
    chat = OpenAIChat(client, max_retries=2, sleep=server_comes_back)
    assert await say_hi(chat, server, client) == "echo: hi"
    assert len(sleeps) == 1 and len(server.chat_requests()) == 1


async def test_a_connect_timeout_on_a_full_backlog_is_retried(make_settings: Any) -> None:
    server = FakeOpenAI()
    with FullBacklog() as backlog:

        async def backlog_drains(seconds: float) -> None:
            backlog.close()
            await server.start(backlog.port)

        client = make_client(make_settings(openai_base_url=backlog.base_url, openai_timeout=0.5))
        chat = OpenAIChat(client, max_retries=1, sleep=backlog_drains)
        assert await say_hi(chat, server, client) == "echo: hi"


async def test_without_retries_a_refused_connection_says_the_server_is_unreachable(make_settings: Any) -> None:
    client = make_client(make_settings(openai_base_url=RefusingPort().base_url))
    chat = OpenAIChat(client, max_retries=0)
    try:
        with pytest.raises(ModelUnavailable) as raised:
            await chat.chat([PromptMessage("user", "hi")], model="gpt-4.1-mini", max_output_tokens=50)
    finally:
        await client.close()
    assert raised.value.retryable
    assert raised.value.message == "Could not reach the model's server. Please try again in a moment."


async def test_a_read_timeout_after_the_request_was_sent_is_still_never_retried(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(Stall(2.0), Reply("must not be asked"))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = make_client(make_settings(openai_timeout=0.5))
    chat = OpenAIChat(client, max_retries=3, sleep=sleep)
    try:
        with pytest.raises(Exception, match="took too long"):
            await chat.chat([PromptMessage("user", "hi")], model="gpt-4.1-mini", max_output_tokens=50)
    finally:
        await client.close()
    assert sleeps == [] and len(fake_openai.chat_requests()) == 1


async def test_a_burst_against_a_server_that_comes_up_late_loses_no_answer(make_settings: Any) -> None:
    port = RefusingPort()
    server = FakeOpenAI()
    started = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if not started.is_set():
            started.set()
            await server.start(port.port)

    client = make_client(make_settings(openai_base_url=port.base_url))
    chat = OpenAIChat(client, max_retries=2, sleep=sleep)
    try:
        results = await asyncio.gather(*(
            chat.chat([PromptMessage("user", f"q{n}")], model="gpt-4.1-mini", max_output_tokens=50) for n in range(20)
        ))  # fmt: skip
    finally:
        await server.stop()
        await client.close()
    assert sorted(r.text for r in results) == sorted(f"echo: q{n}" for n in range(20))
    assert len(server.chat_requests()) == 20


# --- images returned as links --------------------------------------------------------------------


async def test_an_image_returned_as_a_link_is_downloaded_and_uploaded(make_settings: Any) -> None:
    async with FakeOpenAI(image_links=True) as fake:
        settings = make_settings(openai_base_url=fake.base_url, image_url_allowed_hosts=fake.host)
        responder = RecordingResponder()
        async with open_engine(settings) as engine:
            await engine.handle(message("/image a lighthouse 2"), responder)
        downloads = fake.requests_to("/files/image-1.png") + fake.requests_to("/files/image-2.png")
    assert responder.errors == []
    assert [(f.filename, f.content_type, f.data) for f in responder.files] == [
        ("image-1.png", "image/png", TINY_PNG), ("image-2.png", "image/png", TINY_PNG)
    ]  # fmt: skip
    assert len(downloads) == 2
    assert all("authorization" not in {k.lower() for k in d.headers} for d in downloads)  # our key stays home
    assert [row[3] for row in await ledger(settings)] == ["settled"]


@pytest.mark.parametrize(
    ("served", "why"),
    [
        ((b"<html>sign in</html>", "text/html"), "the image link led to a web page, not an image"),
        ((b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 2**20), "image/png"), "the image is over the 1 MB limit"),
        ((b"just some text", "application/octet-stream"), "the image link did not lead to an image"),
    ],
    ids=["web-page", "too-large", "not-an-image"],
)
async def test_a_bad_image_link_is_explained_and_the_drawn_image_still_charged(
    make_settings: Any, served: tuple[bytes, str], why: str
) -> None:
    async with FakeOpenAI(image_links=True) as fake:
        fake.files["image-1.png"] = served
        settings = make_settings(openai_base_url=fake.base_url, max_attachment_mb=1, image_url_allowed_hosts=fake.host)
        responder = RecordingResponder()
        async with open_engine(settings) as engine:
            await engine.handle(message("/image a lighthouse"), responder)
    assert responder.errors == [f"The image was drawn but could not be fetched: {why}. Please try again."]
    assert responder.files == []
    [(kind, _model, cost, state)] = await ledger(settings)
    assert (kind, state) == ("image", "settled") and cost > 0  # the server drew it: it is billed
