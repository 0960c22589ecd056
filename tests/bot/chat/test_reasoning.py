"""Reasoning models: a channel's reasoning effort (/model set <model> effort=…), sent with each call; the
reasoning tokens are within the reserved output budget and settled at the output price."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.app import open_engine
from bot.billing.prices import PriceTable
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


async def test_an_admin_sets_the_channel_s_effort_it_is_shown_and_sent_with_every_call(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings()
    replies = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message(f"/model set {settings.chat_model} effort=high", admin=True), replies)
        await engine.handle(message("/model"), replies)
        await engine.handle(message("think hard"), replies)
        await engine.handle(message(f"/model set {settings.chat_model}", admin=True), replies)
        await engine.handle(message("think less", thread="other"), replies)
    said = [text for text, _ in replies.texts]
    assert said[0] == f"This channel now uses {settings.chat_model} with reasoning effort high."
    assert said[1].startswith(f"This channel uses {settings.chat_model} with reasoning effort high.")
    first, second = fake_openai.chat_requests()
    assert first["reasoning_effort"] == "high" and "reasoning_effort" not in second


async def test_an_unknown_effort_is_refused_with_the_choices(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    replies = RecordingResponder()
    async with open_engine(make_settings()) as engine:
        await engine.handle(message("/model set gpt-4.1-mini effort=extreme", admin=True), replies)
    assert replies.errors and "effort is low, medium or high" in replies.errors[0]


async def test_reasoning_tokens_are_settled_at_the_output_price(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    settings = make_settings()
    fake_openai.enqueue(Reply("42", prompt_tokens=100, completion_tokens=None, reasoning_tokens=600))
    async with open_engine(settings) as engine:
        await engine.handle(message("the answer?"), RecordingResponder())
    db = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    [(output, cost)] = db.execute("SELECT output_tokens, cost_nanos FROM usage_ledger WHERE kind = 'chat'").fetchall()
    assert output >= 600  # the reply's own tokens plus its 600 reasoning tokens
    assert cost == PriceTable.load().chat_cost(settings.chat_model, 100, output)


async def test_usage_shows_the_reasoning_tokens_kept_apart_in_the_ledger(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings()
    fake_openai.enqueue(Reply("42", prompt_tokens=100, completion_tokens=1_234, reasoning_tokens=800))
    usage = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("the answer?"), RecordingResponder())
        await engine.handle(message("/usage"), usage)
    db = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    [(output, reasoning, cost)] = db.execute(
        "SELECT output_tokens, reasoning_tokens, cost_nanos FROM usage_ledger WHERE kind = 'chat'"
    ).fetchall()
    # The API counts reasoning inside completion_tokens: billed once, at the output price, and kept apart.
    assert (output, reasoning) == (1_234, 800)
    assert cost == PriceTable.load().chat_cost(settings.chat_model, 100, 1_234)
    [(text, _)] = usage.texts
    assert "chat $" in text and "(1 call; 1,234 output tokens, of which 800 reasoning)" in text
