"""A chat turn's writes, on SQLite and PostgreSQL alike: the question with its window, and the reply with its settlement
and releases, whatever way each database runs them (PostgreSQL joins each into one statement under the conversation's
lock, storage/postgres/turn_statements.py); and PostgreSQL's turn lease, which reads the open conversation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.billing.budget import Budget
from bot.settings import load_settings
from storage import ConversationKey, NewMessage, Store
from storage.ledger_records import Charge, InFlightLease, Recovered, Settlement, Units
from storage.turn_records import Question, TurnOpening
from tests.harness.store_contract import NOW
from tests.harness.stores import opened

KEY = ConversationKey("slack", "T1", "C1", "171.1")
CHARGE = Charge("slack", "T1", "u1", "C1", "chat", "m")
LATER = NOW + timedelta(seconds=60)


def user(text: str, tokens: int) -> NewMessage:
    return NewMessage(role="user", content=text, tokens=tokens, created_at=NOW, author_id="u1")


def budget(store: Store) -> Budget:
    return Budget(store.ledger, load_settings(env_file=None), lambda: NOW)


async def test_the_window_read_with_the_question_is_the_window_read_after_it_for_every_budget(store: Store) -> None:
    conversation = await store.active_conversation(KEY, NOW)
    for i, tokens in enumerate([10, 20, 0, 30, 40]):  # a message of no tokens ties with the one after it
        await store.add_message(conversation.id, user(f"m{i}", tokens))
    for window_tokens in (1, 14, 15, 16, 45, 46, 85, 86, 1_000):
        question = Question(user(f"q{window_tokens}", 15), window_tokens)
        turn = await store.open_turn(TurnOpening(KEY, NOW, lambda _, q=question: q, lambda *_: None))  # type: ignore[misc]
        assert turn.window == await store.window(conversation.id, window_tokens), window_tokens
        assert (await store.messages(conversation.id))[-1].id == turn.question.id
    assert [m.content for m in (await store.window(conversation.id, 16))] == ["q1000"]
    assert (await store.window(conversation.id, 14)) == []  # the question alone does not fit: an empty window


async def test_a_reply_that_fails_to_store_releases_nothing_with_it_and_the_turn_then_frees_its_leases(
    store: Store,
) -> None:
    ledger = store.ledger
    conversation = await store.active_conversation(KEY, NOW)
    claimed = await ledger.claim_in_flight("slack", "T1", "u1", "p:1", NOW, LATER, 1)
    assert claimed is not None
    running = InFlightLease(claimed)
    async with store.turn_lock(KEY) as lease, budget(store).metered(CHARGE, Units(), 100) as bill:
        settlement = Settlement(bill.id, Units(output_tokens=3), 60, NOW)
        with pytest.raises(Exception, match=r"(?i)foreign key"):  # the conversation is gone: the insert fails
            await store.add_reply(conversation.id + 1_000, NewMessage("assistant", "x", 1, NOW), settlement,
                                  lease, running)  # fmt: skip
        # Nothing of the statement that failed was written: the hold is still reserved, both leases held.
        assert [(cost, state) for *_, cost, state in await ledger.ledger_rows("T1")] == [(100, "reserved")]
        assert not running.released and (lease is None or not lease.released)
        if lease is not None:  # PostgreSQL: both leases are rows, written (or not) with the reply
            assert await ledger.claim_in_flight("slack", "T1", "u1", "p:1", NOW, LATER, 1) is None
        bill.note_spent(Units(output_tokens=3), 60)  # the call was made: leaving the block charges it
    assert [(cost, state) for *_, cost, state in await ledger.ledger_rows("T1")] == [(60, "settled")]
    # The turn's own exits release what the reply did not take with it.
    async with asyncio.timeout(2), store.turn_lock(KEY):
        pass
    await ledger.release_in_flight(running.id)
    assert await ledger.claim_in_flight("slack", "T1", "u1", "p:1", NOW, LATER, 1) is not None


async def test_a_reply_whose_hold_was_lost_is_stored_reports_false_and_its_real_cost_is_recorded(store: Store) -> None:
    ledger = store.ledger
    conversation = await store.active_conversation(KEY, NOW)
    claimed = await ledger.claim_in_flight("slack", "T1", "u1", "p:1", NOW, LATER, 1)
    assert claimed is not None
    running = InFlightLease(claimed)
    held: list[bool] = []
    async with store.turn_lock(KEY) as lease, budget(store).metered(CHARGE, Units(), 100) as bill:
        # The holder stalled past the reservation's expiry: the sweep charged its worst case, estimated.
        assert await ledger.release_expired(NOW + timedelta(hours=1)) == Recovered(released=0, estimated=1)
        assert [(cost, state) for *_, cost, state in await ledger.ledger_rows("T1")] == [(100, "settled")]

        async def along(settlement: Settlement) -> bool:
            _, kept = await store.add_reply(conversation.id, NewMessage("assistant", "late", 2, NOW), settlement,
                                            lease, running)  # fmt: skip
            held.append(kept)
            return kept

        await bill.settle(Units(output_tokens=3), 60, along=along)
    assert held == [False]
    assert [m.content for m in await store.messages(conversation.id)] == ["late"]
    # The late settle recorded the real cost over the estimate, and the totals (kept by triggers) follow it.
    assert [(cost, state) for *_, cost, state in await ledger.ledger_rows("T1")] == [(60, "settled")]
    assert (await ledger.totals("T1", "u1", "2026-11-24", "2026-11")).user_day_nanos == 60
    [row] = await ledger.usage("T1", "2026-11-24")
    assert (row.cost_nanos, row.estimated_nanos, row.output_tokens) == (60, 0, 3)
    # Both leases went with the reply.
    assert running.released and (lease is None or lease.released)
    assert await ledger.claim_in_flight("slack", "T1", "u1", "p:1", NOW, LATER, 1) is not None


async def test_questions_and_replies_stored_at_once_from_two_processes_keep_the_running_totals_exact(
    url: str,
) -> None:
    async with opened(url) as first, opened(url) as second:
        conversation = await first.active_conversation(KEY, NOW)

        async def reply(store: Store, i: int) -> None:
            async with budget(store).metered(CHARGE, Units(), 100) as bill:
                settlement = Settlement(bill.id, Units(output_tokens=i), 10 + i, NOW)
                _, bill.settled = await store.add_reply(
                    conversation.id, NewMessage("assistant", f"r{i}", i, NOW), settlement
                )

        async def ask(store: Store, i: int) -> None:
            question = Question(user(f"q{i}", 100 + i), 10_000)
            await store.open_turn(TurnOpening(KEY, NOW, lambda _: question, lambda *_: None, conversation))

        await asyncio.gather(*(
            step(store, i) for i in range(1, 21) for step in (reply, ask) for store in (first, second)
        ))  # fmt: skip
        window = await first.window(conversation.id, 1_000_000)
        assert len(window) == 80
        running = 0
        for message in window:  # each message's running total counts every message before it, once
            assert message.tokens_before == running, [(m.content, m.tokens_before) for m in window]
            running += message.tokens
        assert running == 2 * sum(i + 100 + i for i in range(1, 21))
        totals = await second.ledger.totals("T1", "u1", "2026-11-24", "2026-11")
        assert totals.user_day_nanos == 2 * sum(10 + i for i in range(1, 21))
