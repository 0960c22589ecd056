"""Every model call is metered: the ledger matches the API's reported usage times the price."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.app import open_engine
from bot.billing.budget import Budget
from bot.billing.metering import Cell, MeteredChat
from bot.billing.money import usd_to_nanos
from bot.billing.prices import PriceTable
from bot.providers.llm import PromptMessage
from bot.providers.openai_chat import OpenAIChat, make_client
from bot.providers.tokens import TokenCounter
from bot.settings import Settings
from storage import open_store
from storage.ledger_records import Charge
from tests.fakes.openai_server import (
    DropMidStream,
    FakeOpenAI,
    InvalidKey,
    Reply,
    Scripted,
    ServerError,
    Stall,
    count_tokens,
    prompt_tokens,
)
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


async def ledger(settings: Settings, team: str = "local") -> list[tuple[str, str, int, str]]:
    store = await open_store(settings.database_url)
    try:
        return await store.ledger.ledger_rows(team)
    finally:
        await store.close()


async def test_a_scripted_day_of_mixed_calls_costs_exactly_usage_times_price(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(openai_timeout=0.5)
    script: list[Scripted] = [
        Reply("one", prompt_tokens=1_200, completion_tokens=300),
        Reply("two", prompt_tokens=2_500, completion_tokens=800, cached_tokens=1_024),
        ServerError(500),
        Reply("three", prompt_tokens=40_000, completion_tokens=1),
        DropMidStream("half", after_chunks=1),
        Reply("four", prompt_tokens=7, completion_tokens=999),
        Stall(2.0),
    ]
    fake_openai.enqueue(*script)
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        for i, _ in enumerate(script):
            text = f"/ask question {i}" if i % 2 else f"question {i}"
            await engine.handle(message(text, user=f"user{i % 3}"), responder)
    assert len(responder.errors) == 3

    # Prices per 1M tokens for gpt-4.1-mini: input $0.40, cached input $0.10, output $1.60.
    # The provider ran the cut stream and the stalled call: each is charged its exact prompt plus
    # the output received ("half", nothing); the 500 was refused before running and costs nothing.
    sent = fake_openai.chat_requests()
    expected = (
        Decimal("1200") * Decimal("0.40") + 300 * Decimal("1.60")
        + (2500 - 1024) * Decimal("0.40") + 1024 * Decimal("0.10") + 800 * Decimal("1.60")
        + 40_000 * Decimal("0.40") + 1 * Decimal("1.60")
        + prompt_tokens(sent[4]["messages"]) * Decimal("0.40") + count_tokens("half") * Decimal("1.60")
        + 7 * Decimal("0.40") + 999 * Decimal("1.60")
        + prompt_tokens(sent[6]["messages"]) * Decimal("0.40")
    ) / 1_000_000  # fmt: skip
    rows = await ledger(settings)
    assert sum(cost for _, _, cost, _ in rows) == usd_to_nanos(expected)
    assert [state for *_, state in rows] == [
        "settled", "settled", "released", "settled", "settled", "settled", "settled"
    ]  # fmt: skip
    assert all(cost == 0 for *_, cost, state in rows if state == "released")
    assert {kind for kind, *_ in rows} == {"chat"}


async def test_the_reservation_is_the_exact_prompt_plus_the_output_budget(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    prices = PriceTable.load()
    probe = make_settings(max_output_tokens=500, system_prompt="Be brief.")
    fake_openai.enqueue(Reply("ok", completion_tokens=500))
    async with open_engine(probe) as engine:
        await engine.handle(message("hello", user="probe"), RecordingResponder())
    worst = prices.chat_cost("gpt-4.1-mini", prompt_tokens(fake_openai.chat_requests()[0]["messages"]), 500)
    assert (await ledger(probe))[0][2] == worst  # it used its whole output budget: cost == worst case

    # A daily budget of exactly one worst case: the first call fits to the nano-dollar; after it
    # settles at its (smaller) real cost, a second identical call no longer fits.
    tight = make_settings(max_output_tokens=500, system_prompt="Be brief.", quota_user_daily_usd=Decimal(worst) / 10**9)
    responder = RecordingResponder()
    async with open_engine(tight) as engine:
        await engine.handle(message("hello", user="fresh", channel="c2"), responder)
        await engine.handle(message("hello", user="fresh", channel="c3"), responder)
    assert responder.replies == ["echo: hello"]
    [refusal] = responder.errors
    assert refusal.startswith("You've used $0.00") and "daily budget; it resets in" in refusal


async def test_a_refused_call_never_reaches_the_model_and_keeps_the_question(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(quota_user_daily_usd="0")
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("hello"), responder)
    assert fake_openai.chat_requests() == []
    assert responder.errors[0].startswith("You've used $0.00 of your $0.00 daily budget; it resets in")
    assert await ledger(settings) == []


async def test_failed_calls_charge_nothing(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    settings = make_settings()
    fake_openai.enqueue(InvalidKey(), ServerError(503))
    async with open_engine(settings) as engine:
        await engine.handle(message("a"), RecordingResponder())
        await engine.handle(message("/ask b"), RecordingResponder())
    rows = await ledger(settings)
    assert [(cost, state) for *_, cost, state in rows] == [(0, "released"), (0, "released")]


async def test_usage_shows_your_spend_and_what_is_left(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    settings = make_settings(quota_user_daily_usd="0.50", quota_team_monthly_usd="20")
    fake_openai.enqueue(Reply("hi", prompt_tokens=100_000, completion_tokens=50_000))  # $0.04 + $0.08
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("hello"), responder)
        await engine.handle(message("/usage"), responder)
    text, private = responder.texts[-1]
    assert private
    assert text.splitlines() == [
        "Today: $0.12 — chat $0.12 (1 call).",
        "This month: $0.12 — chat $0.12 (1 call).",
        "Left today: $0.38 of your $0.50 daily budget (resets 00:00 UTC).",
        "Team budget left this month: $19.88 of $20.00.",
    ]


async def test_team_usage_is_for_admins_and_comes_with_a_chart(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    settings = make_settings()
    fake_openai.enqueue(
        Reply("a", prompt_tokens=1_000_000, completion_tokens=0),
        Reply("b", prompt_tokens=0, completion_tokens=1_000_000),
    )
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("x", user="ann"), responder)
        await engine.handle(message("y", user="bob", channel="c2"), responder)
        await engine.handle(message("/usage team", user="ann"), responder)
        assert responder.errors == [
            "/usage team is for admins only; /usage shows your own."
            " Start the console with --admin to speak as an admin (make run ARGS=--admin)."
        ]
        await engine.handle(message("/usage team", user="ann", admin=True), responder)
    text = responder.texts[-1][0]
    assert "Team spend in" in text and ": $2.00 — chat $2.00 (2 calls)." in text
    assert text.index("bob: $1.60") < text.index("ann: $0.40")
    [chart] = responder.files
    assert chart.data.startswith(b"\x89PNG") and chart.content_type == "image/png"


async def test_team_chart_shows_the_same_month_as_the_text_by_day_and_kind_with_the_budget(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    from bot.billing.usage_report import team_month_png, team_usage
    from tests.harness.clock import Clock

    clock = Clock(datetime(2026, 11, 30, 12, tzinfo=UTC))  # the last day of November: not in the chart
    settings = make_settings(quota_team_monthly_usd="10")
    fake_openai.enqueue(*[Reply(t, prompt_tokens=1_000_000, completion_tokens=0) for t in "abc"])
    async with open_engine(settings, clock=clock) as engine:
        await engine.handle(message("november"), RecordingResponder())
        clock.advance(days=2)  # 2 December
        await engine.handle(message("first"), RecordingResponder())
        clock.advance(days=15)  # 17 December
        await engine.handle(message("second"), RecordingResponder())
        text, month = await team_usage(engine.budget, "local")
    assert text.splitlines()[:2] == [
        "Team spend in December 2026 (to Dec 17): $0.80 — chat $0.80 (2 calls).",
        "Team budget: $10.00 a month; $9.20 left.",
    ]
    assert (month.month, month.today, len(month.days), month.budget_nanos) == (
        "2026-12",
        date(2026, 12, 17),
        31,
        10**10,
    )
    assert [day.day for day, nanos in zip(month.days, month.per_kind["chat"], strict=True) if nanos] == [2, 17]
    assert month.total_nanos == 800_000_000
    png = team_month_png(month)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # two panels with text, not an empty canvas


async def test_quota_is_admin_only_and_every_change_is_recorded(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    settings = make_settings()
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("/quota set user bob daily 0.50"), responder)
        assert responder.errors == [
            "/quota is for admins only. Start the console with --admin to speak as an admin (make run ARGS=--admin)."
        ]
        for line in (
            "/quota set user bob daily 0.50",
            "/quota set user bob daily $0.75",
            "/quota set team monthly 50",
            "/quota set users images 10",
            "/quota set user bob audio 12.5",
            "/quota reset user bob",
            "/quota set team daily 3",
            "/quota set user bob daily lots",
            "/quota frobnicate",
        ):
            await engine.handle(message(line, user="root", admin=True), responder)
        await engine.handle(message("/quota show", user="root", admin=True), responder)
    confirmations = [text for text, _ in responder.texts[:-1]]
    assert confirmations == [
        "User bob: daily budget default → $0.50.",
        "User bob: daily budget $0.50 → $0.75.",
        "The team: monthly budget default → $50.00.",
        "Every user: images per day default → 10 images.",
        "User bob: audio per day default → 12.5 min.",
        "User bob: 2 limits back to the defaults.",
    ]
    assert responder.errors[1].startswith("Unknown team limit 'daily': use monthly.")
    assert responder.errors[2] == "'lots' is not an amount in dollars like 0.50 (or 'none' for unlimited)."
    assert responder.errors[3].startswith("/quota takes show, set or reset, not 'frobnicate'.\nUsage: /quota")
    shown = responder.texts[-1][0]
    assert "the team: monthly budget $50.00" in shown and "every user: images per day 10 images" in shown
    assert "root: user bob audio per day 12.5 min → default" in shown


async def test_a_platform_failing_mid_reply_still_settles_what_the_model_billed(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.responder import RecordedStream

    class BrokenStream(RecordedStream):
        async def append(self, text: str) -> None:
            if len(self.pieces) >= 2:
                raise ConnectionError("the platform went away")
            await super().append(text)

    class BrokenResponder(RecordingResponder):
        def stream(self) -> RecordedStream:
            stream = BrokenStream()
            self.streams.append(stream)
            return stream

    settings = make_settings()
    fake_openai.enqueue(Reply("a reply in many small pieces", chunk_chars=3, completion_tokens=1_000_000))
    responder = BrokenResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("hello"), responder)
    assert responder.errors == ["Sorry, something went wrong on my side. It has been logged; please try again."]
    [(_, _, cost, state)] = await ledger(settings)
    assert state == "settled" and cost >= usd_to_nanos("1.60")  # the million output tokens were paid for


async def test_a_reservation_written_with_a_turn_is_given_back_if_the_call_never_starts_and_never_undercuts_it(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(quota_user_daily_usd="1")
    store = await open_store(settings.database_url)
    try:
        budget = Budget(store.ledger, settings, lambda: datetime.now(UTC))
        chat = MeteredChat(
            OpenAIChat(make_client(settings), max_retries=0),
            prices=PriceTable.load(),
            budget=budget,
            tokens=TokenCounter.for_model(settings.chat_model),
            max_output_tokens=100,
            max_in_flight=1,
        )
        charge = Charge("console", "local", "u1", "c1", "chat", settings.chat_model)

        # The turn failed after its opening wrote the reservation, before its call: given back, and the slot too.
        with pytest.raises(RuntimeError):
            async with chat.early() as early:
                early.reserved = await store.ledger.reserve(early.request(charge, settings.chat_model, 50))
                raise RuntimeError("the turn failed before its call")
        assert [(cost, state) for *_, cost, state in await store.ledger.ledger_rows("local")] == [(0, "released")]

        # Reserved for a smaller prompt than the call sends: given back, and the call reserves its own worst case.
        fake_openai.enqueue(Reply("ok", prompt_tokens=80, completion_tokens=5))
        async with chat.early() as early:
            early.reserved = await store.ledger.reserve(early.request(charge, settings.chat_model, 10))
            cell = Cell([PromptMessage("user", "hello")], 80, settings.chat_model)
            await chat.stream(cell, charge, early=early)
        rows = [(cost, state) for *_, cost, state in await store.ledger.ledger_rows("local")]
        assert rows[1:] == [(0, "released"), (PriceTable.load().chat_cost(settings.chat_model, 80, 5), "settled")]
        async with chat.early():  # the one slot is free again
            pass
    finally:
        await store.close()
