"""Every injected provider fault gives one clear message, keeps the user's message, stores no reply."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import open_engine
from tests.fakes.openai_server import (
    ContentPolicy,
    ContextLengthExceeded,
    DropMidStream,
    FakeOpenAI,
    InvalidKey,
    RateLimit,
    Reply,
    ServerError,
    Stall,
)
from tests.fakes.responder import RecordingResponder
from tests.harness.conversations import history
from tests.harness.messages import message

FAULTS = [
    (RateLimit(retry_after=7), "The model is rate limited right now; try again in 7 s."),
    (RateLimit(), "The model is rate limited right now; try again in a minute."),
    (ServerError(500), "The model's server failed (HTTP 500). Please try again in a moment."),
    (ServerError(503), "The model's server failed (HTTP 503). Please try again in a moment."),
    (Stall(3.0), "The model took too long to answer and the request was stopped. Please try again."),
    (ContextLengthExceeded(), "This conversation is longer than the model can read. Use /reset"),
    (ContentPolicy(), "The model's content policy refused this request. Try rephrasing it."),
    (InvalidKey(), "The bot's OpenAI API key was refused; ask an admin to check OPENAI_API_KEY."),
    (DropMidStream("half an ans", after_chunks=1), "Lost the connection to the model mid-answer."),
]


@pytest.mark.parametrize(("fault", "expected"), FAULTS, ids=[type(f).__name__ for f, _ in FAULTS])
async def test_fault_gives_a_clear_message_keeps_the_question_and_stores_no_reply(
    make_settings: Any, fake_openai: FakeOpenAI, fault: Any, expected: str
) -> None:
    settings = make_settings(openai_timeout=0.5)
    fake_openai.enqueue(fault)
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("what is up?"), responder)
    [error] = responder.errors
    assert error.startswith(expected)
    assert "test-key-not-secret" not in error
    assert responder.replies == []
    assert all(s.abandoned for s in responder.streams)
    assert await history(settings, message("x").conversation_key) == [("user", "what is up?")]
    assert len(fake_openai.chat_requests()) == 1  # retries are off here: one call, one failure


async def test_conversation_continues_after_a_failed_turn(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    settings = make_settings()
    fake_openai.enqueue(ServerError(500), Reply("second try works"))
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("first question"), responder)
        await engine.handle(message("again?"), responder)
    assert responder.replies == ["second try works"]
    sent = [(m["role"], m["content"]) for m in fake_openai.chat_requests()[-1]["messages"]][1:]
    assert sent == [("user", "first question"), ("user", "again?")]


@pytest.mark.parametrize("fault", [RateLimit(retry_after=0), ServerError(503)], ids=["429", "503"])
async def test_uncharged_failures_are_retried(make_settings: Any, fake_openai: FakeOpenAI, fault: Any) -> None:
    settings = make_settings(openai_max_retries=2)
    fake_openai.enqueue(fault, Reply("got there"))
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("hello"), responder)
    assert responder.errors == []
    assert responder.replies == ["got there"]
    assert len(fake_openai.chat_requests()) == 2


async def test_retry_after_longer_than_we_wait_is_not_retried(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    settings = make_settings(openai_max_retries=2, openai_max_retry_wait=5)
    fake_openai.enqueue(RateLimit(retry_after=60))
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("hello"), responder)
    assert responder.errors == ["The model is rate limited right now; try again in 60 s."]
    assert len(fake_openai.chat_requests()) == 1


@pytest.mark.parametrize("fault", [Stall(3.0), DropMidStream("partial", after_chunks=1)], ids=["stall", "drop"])
async def test_failures_that_may_have_been_charged_are_never_retried(
    make_settings: Any, fake_openai: FakeOpenAI, fault: Any
) -> None:
    settings = make_settings(openai_max_retries=3, openai_timeout=0.5)
    fake_openai.enqueue(fault, Reply("should not be asked for"))
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("hello"), responder)
    assert len(responder.errors) == 1
    assert len(fake_openai.chat_requests()) == 1


async def test_a_reply_cut_at_the_length_limit_is_kept_and_flagged(engine: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply("the beginning of a long", finish_reason="length"))
    responder = RecordingResponder()
    await engine.handle(message("tell me everything"), responder)
    assert responder.replies == ["the beginning of a long"]
    assert "token limit" in responder.texts[-1][0]
