"""A chat turn's work before its call, as one trip to the store (`Store.open_turn`), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from bot.billing.budget import Budget
from bot.settings import load_settings
from storage import Conversation, ConversationKey, NewMessage, Store, WindowMessage
from storage.ledger_records import Charge, ReservationRequest, Units
from storage.turn_records import Question, TurnOpening
from tests.harness.store_contract import NOW

KEY = ConversationKey("slack", "T1", "C1", "171.1")
CHARGE = Charge("slack", "T1", "u1", "C1", "chat", "m")


class Refused(Exception):
    """What a caller raises between the statements to refuse the message."""


def question(text: str, tokens: int, window_tokens: int = 1_000) -> Question:
    return Question(NewMessage("user", text, tokens, NOW, author_id="u1"), window_tokens)


def budget(store: Store, **settings: str) -> Budget:
    return Budget(store.ledger, load_settings(env_file=None, **settings), lambda: NOW)


async def test_opening_a_turn_starts_the_conversation_stores_the_question_reads_its_window_and_reserves(
    store: Store,
) -> None:
    seen: list[tuple[int, list[str]]] = []

    def reservation(conversation: Conversation, window: list[WindowMessage]) -> ReservationRequest:
        seen.append((conversation.id, [m.content for m in window]))
        return budget(store).request(CHARGE, Units(input_tokens=sum(m.tokens for m in window)), 500)

    opened = await store.open_turn(TurnOpening(KEY, NOW, lambda _: question("hello", 5), reservation))
    assert opened.conversation == await store.active_conversation(KEY, NOW)
    assert [m.content for m in opened.window] == ["hello"] and opened.question.id == opened.window[0].id
    assert seen == [(opened.conversation.id, ["hello"])]
    assert opened.reserved is not None
    assert [(cost, state) for *_, cost, state in await store.ledger.ledger_rows("T1")] == [(500, "reserved")]

    second = await store.open_turn(TurnOpening(KEY, NOW, lambda _: question("again", 7, 7), lambda *_: None))
    assert second.conversation.id == opened.conversation.id and second.reserved is None
    assert [m.content for m in second.window] == ["again"]  # the window's budget, as the caller decided
    assert [m.content for m in await store.messages(opened.conversation.id)] == ["hello", "again"]


async def test_a_refused_question_writes_nothing_and_a_failing_reservation_leaves_the_question_and_no_hold(
    store: Store,
) -> None:
    conversation = await store.active_conversation(KEY, NOW)

    def refuse(_: Conversation) -> Question:
        raise Refused

    with pytest.raises(Refused):
        await store.open_turn(TurnOpening(KEY, NOW, refuse, lambda *_: None))
    assert await store.messages(conversation.id) == []

    def failing(_: Conversation, window: list[WindowMessage]) -> ReservationRequest:
        raise Refused

    with pytest.raises(Refused):
        await store.open_turn(TurnOpening(KEY, NOW, lambda _: question("kept", 5), failing))
    # The question is kept whatever follows it (a user's message is never lost); nothing is held for the call.
    assert [m.content for m in await store.messages(conversation.id)] == ["kept"]
    assert await store.ledger.ledger_rows("T1") == []
    # And the store is usable at once: nothing was left half open.
    again = await store.open_turn(TurnOpening(KEY, NOW, lambda _: question("next", 5), lambda *_: None))
    assert [m.content for m in again.window] == ["kept", "next"]


async def test_a_reservation_over_the_limit_is_not_made_with_the_turn_and_the_budget_then_refuses_it(
    store: Store,
) -> None:
    limited = budget(store, quota_user_daily_usd="0.000001")  # 1,000 nanos

    def reservation(_: Conversation, window: list[WindowMessage]) -> ReservationRequest:
        return limited.request(CHARGE, Units(input_tokens=5), 5_000)

    opened = await store.open_turn(TurnOpening(KEY, NOW, lambda _: question("hello", 5), reservation))
    assert opened.reserved is None and await store.ledger.ledger_rows("T1") == []
    assert [m.content for m in opened.window] == ["hello"]  # the question is stored all the same
    outcome = await store.ledger.reserve_or_totals(reservation(opened.conversation, opened.window))
    assert not isinstance(outcome, int) and outcome.limits.user_daily_nanos == 1_000
