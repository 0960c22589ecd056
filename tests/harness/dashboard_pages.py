"""A saved prompt library for the dashboard's page tests (server-rendered and browser)."""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.harness.clock import Clock
from tests.harness.messages import message


async def saved_library(engine: Any, fake_openai: FakeOpenAI, clock: Clock) -> list[int]:
    """Two versions of `summary`, one run rated with a comment, and a comparison of both versions a minute later."""
    responder = RecordingResponder()
    for text in (
        "/prompt save summary Summarize {text} for a {tone} reader.",
        '/prompt save summary system="You are terse." Summarize {text} in a {tone} tone.',
    ):
        await engine.handle(message(text, user="ann"), responder)
    fake_openai.enqueue(Reply("First <b>run</b>."), Reply("Left column."), Reply("Right column."))
    await engine.handle(message("/prompt run summary@v1 text=notes tone=dry", user="ann"), responder)
    await engine.handle(message("/prompt rate 1 4 clear & short", user="bob"), responder)
    clock.advance(minutes=1)
    await engine.handle(message("/prompt compare summary versions=v1,v2 text=notes tone=dry", user="ann"), responder)
    assert not responder.errors, responder.errors
    return [2, 3]
