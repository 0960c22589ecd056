"""A chat turn's writes, on SQLite and PostgreSQL alike: the question with its window, and the reply with its settlement
and releases, whatever way each database runs them (storage/postgres/turn_statements.py joins them on PostgreSQL);
and each message's running token total, exact through concurrent turns, edits, deletions, /forget and an upgrade
(PostgreSQL keeps it on the conversation's row too, and every change to a conversation's messages moves it)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.billing.budget import Budget
from bot.settings import load_settings
from storage import ConversationKey, NewMessage, PlatformMessage, Store, WindowMessage
from storage.ledger_records import Charge, InFlightLease, Recovered, Settlement, Units
from storage.turn_records import Question, TurnOpening
from tests.harness.store_contract import NOW
from tests.harness.stores import assert_totals_kept, opened, raw_database, schema_before

KEY = ConversationKey("slack", "T1", "C1", "171.1")
CHARGE = Charge("slack", "T1", "u1", "C1", "chat", "m")
LATER = NOW + timedelta(seconds=60)


def user(text: str, tokens: int, author: str = "u1", platform_id: str = "") -> NewMessage:
    return NewMessage(role="user", content=text, tokens=tokens, created_at=NOW, author_id=author,
                      platform_message_id=platform_id)  # fmt: skip


def reply(text: str, tokens: int, to: int) -> NewMessage:
    return NewMessage(role="assistant", content=text, tokens=tokens, created_at=NOW, reply_to=to)


async def history(store: Store, conversation_id: int) -> list[WindowMessage]:
    return await store.window(conversation_id, 1_000_000_000)


def assert_exact(messages: list[WindowMessage], start: int = 0) -> int:
    """Each message's running total counts every message before it once (from `start`); where the last ends."""
    running = start
    for m in messages:
        assert m.tokens_before == running, [(m.content, m.tokens_before, m.tokens) for m in messages]
        running += m.tokens
    return running


async def next_starts_at(store: Store, conversation_id: int) -> int:
    """The running total the conversation's next message is stored with."""
    stored = await store.add_message(conversation_id, user("next", 1, author="u9"))
    [last] = [m for m in await history(store, conversation_id) if m.id == stored.id]
    return last.tokens_before


def budget(store: Store) -> Budget:
    return Budget(store.ledger, load_settings(env_file=None), lambda: NOW)


async def settled_reply(store: Store, conversation_id: int, message: NewMessage, i: int) -> None:
    """`message` stored as the reply of a call charged to u1 (reserved 100 nanos), which it settles at 10 + i."""
    async with budget(store).metered(CHARGE, Units(), 100) as bill:
        settlement = Settlement(bill.id, Units(output_tokens=i), 10 + i, NOW)
        _, bill.settled = await store.add_reply(conversation_id, message, settlement)


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
            await settled_reply(store, conversation.id, NewMessage("assistant", f"r{i}", i, NOW), i)

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
        await assert_totals_kept(url)
        assert await next_starts_at(second, conversation.id) == running
        totals = await second.ledger.totals("T1", "u1", "2026-11-24", "2026-11")
        assert totals.user_day_nanos == 2 * sum(10 + i for i in range(1, 21))


async def test_running_totals_stay_exact_through_edits_deletions_and_forget(url: str) -> None:
    async with opened(url) as store:
        conversation = await store.active_conversation(KEY, NOW)
        other = await store.active_conversation(ConversationKey("slack", "T1", "C2", ""), NOW)
        cid = conversation.id
        for n, (author, asked, answered) in enumerate([("u1", 10, 20), ("u2", 30, 40), ("u1", 50, 60)], 1):
            question = await store.add_message(cid, user(f"q{n}", asked, author, f"p{n}"))
            await store.add_message(cid, reply(f"r{n}", answered, question.id))
        await store.add_message(other.id, user("theirs", 8, "u2", "o1"))
        await store.add_message(other.id, user("mine", 9, "u1", "o2"))
        assert assert_exact(await history(store, cid)) == 210

        # Edits move every later running total, and the conversation's, by the change in size.
        assert await store.edit_platform_message(PlatformMessage("slack", "T1", "C1", "p2"), "u2", "q2!", 35) == 1
        assert assert_exact(await history(store, cid)) == 215
        await assert_totals_kept(url)
        assert await store.edit_platform_message(PlatformMessage("slack", "T1", "C1", "p3"), "u1", "q3?", 45) == 1
        assert assert_exact(await history(store, cid)) == 210
        await assert_totals_kept(url)

        # The last question deleted with its reply: the conversation ends where the message before them ended.
        assert await store.delete_platform_message(PlatformMessage("slack", "T1", "C1", "p3")) == 2
        assert assert_exact(await history(store, cid)) == 105
        await assert_totals_kept(url)
        # An earlier one deleted: the running totals after it stay as they were (the window leaves its tokens out).
        assert await store.delete_platform_message(PlatformMessage("slack", "T1", "", "p1")) == 2
        assert assert_exact(await history(store, cid), start=30) == 105
        await assert_totals_kept(url)

        question = await store.add_message(cid, user("q4", 5, "u1", "p4"))
        await store.add_message(cid, reply("r4", 6, question.id))
        assert assert_exact(await history(store, cid), start=30) == 116
        # /forget takes the person's last question and its reply here, and their last message in the other one.
        counts = await store.forget_user("T1", "u1", "forgotten")
        assert (counts["messages"], counts["replies"]) == (2, 1)
        assert assert_exact(await history(store, cid), start=30) == 105
        assert assert_exact(await history(store, other.id)) == 8
        await assert_totals_kept(url)
        assert await next_starts_at(store, cid) == 105
        assert await next_starts_at(store, other.id) == 8
        await assert_totals_kept(url)


async def test_edits_and_deletions_from_one_process_while_another_stores_turns_keep_the_running_totals_exact(
    url: str,
) -> None:
    async with opened(url) as first, opened(url) as second:
        conversation = await first.active_conversation(KEY, NOW)
        for i in range(10):
            await first.add_message(conversation.id, user(f"seed {i}", 10, "u2", f"s{i}"))

        async def ask(store: Store, i: int) -> None:
            question = Question(user(f"q{i}", 100 + i), 10_000)
            await store.open_turn(TurnOpening(KEY, NOW, lambda _: question, lambda *_: None, conversation))

        async def answer(store: Store, i: int) -> None:
            async with budget(store).metered(CHARGE, Units(), 100) as bill:
                settlement = Settlement(bill.id, Units(output_tokens=i), 10 + i, NOW)
                _, bill.settled = await store.add_reply(
                    conversation.id, NewMessage("assistant", f"r{i}", i, NOW), settlement
                )

        async def edit(store: Store, i: int) -> None:  # seeds 5..9 grow by i tokens each
            seed = PlatformMessage("slack", "T1", "C1", f"s{i}")
            assert await store.edit_platform_message(seed, "u2", f"seed {i}, edited", 10 + i) == 1

        async def delete(store: Store, i: int) -> None:  # seeds 0..4 go: the first messages, so nothing ends there
            assert await store.delete_platform_message(PlatformMessage("slack", "T1", "C1", f"s{i}")) == 1

        await asyncio.gather(
            *(step(store, i) for i in range(20) for step in (ask, answer) for store in (first, second)),
            *(edit(second if i % 2 else first, i) for i in range(5, 10)),
            *(delete(first if i % 2 else second, i) for i in range(5)),
        )  # fmt: skip
        messages = await history(first, conversation.id)
        assert len(messages) == 5 + 80
        end = assert_exact(messages, start=5 * 10)
        assert end == 5 * 10 + sum(10 + i for i in range(5, 10)) + 2 * sum(100 + i + i for i in range(20))
        await assert_totals_kept(url)
        assert await next_starts_at(second, conversation.id) == end


async def test_a_reply_that_fails_to_store_in_its_conversation_leaves_the_running_total_as_it_was(url: str) -> None:
    async with opened(url) as store:
        conversation = await store.active_conversation(KEY, NOW)
        await store.add_message(conversation.id, user("q", 12))
        async with store.turn_lock(KEY) as lease, budget(store).metered(CHARGE, Units(), 100) as bill:
            settlement = Settlement(bill.id, Units(output_tokens=3), 60, NOW)
            with pytest.raises(Exception, match=r"(?i)check"):  # a negative size: the insert fails its check
                await store.add_reply(conversation.id, NewMessage("assistant", "x", -1, NOW), settlement, lease)
            assert [(cost, state) for *_, cost, state in await store.ledger.ledger_rows("T1")] == [(100, "reserved")]
            assert lease is None or not lease.released
            bill.note_spent(Units(output_tokens=3), 60)
        await assert_totals_kept(url)
        assert await next_starts_at(store, conversation.id) == 12


async def test_an_upgrade_sets_each_conversations_running_total_from_the_messages_it_holds(url: str) -> None:
    async with schema_before(url, "turn_cost_conversation_totals") as db:
        for channel, sizes in (("C1", [(0, 10), (10, 20), (30, 5)]), ("C2", []), ("C3", [(0, 10), (50, 7)])):
            conversation_id = await db.fetchval(
                "INSERT INTO conversations (platform, team_id, channel_id, thread_id, created_at)"
                " VALUES ('slack', 'T1', $1, '', $2) RETURNING id", channel, NOW.isoformat()
            )  # fmt: skip
            for before, tokens in sizes:  # C3 lost a message of 40 tokens between its two
                await db.execute(
                    "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, created_at)"
                    " VALUES ($1, 'user', 'old', $2, $3, $4)", conversation_id, tokens, before, NOW.isoformat()
                )  # fmt: skip
    async with opened(url) as store:  # opening migrates
        await assert_totals_kept(url)
        for channel, end in (("C1", 35), ("C2", 0), ("C3", 57)):
            conversation = await store.active_conversation(ConversationKey("slack", "T1", channel, ""), NOW)
            assert await next_starts_at(store, conversation.id) == end, channel


async def test_forgetting_a_person_while_another_process_stores_a_reply_charged_to_them_keeps_the_totals(
    url: str,
) -> None:
    async with opened(url) as first, opened(url) as second:
        conversation = await first.active_conversation(KEY, NOW)

        async def answer(question_id: int, i: int) -> None:
            await settled_reply(second, conversation.id, reply(f"r{i}", 5, question_id), i)  # charged to u1

        # /forget locks the conversation and sets its total again while the reply moves it on; both touch u1's totals.
        for i in range(30):
            await first.add_message(conversation.id, user(f"u1 says {i}", 3))
            question = await first.add_message(conversation.id, user(f"u2 asks {i}", 10, author="u2"))
            await asyncio.gather(answer(question.id, i), first.forget_user("T1", "u1", f"forgotten-{i}"))
        await assert_totals_kept(url)
        assert [m.content for m in await history(first, conversation.id)][-2:] == ["u2 asks 29", "r29"]
        assert {state for *_, state in await first.ledger.ledger_rows("T1")} == {"settled"}


async def test_a_message_stored_by_the_release_before_during_a_rolling_deploy_is_counted_by_the_next_one(
    url: str,
) -> None:
    async with opened(url) as store:
        conversation = await store.active_conversation(KEY, NOW)
        await store.add_message(conversation.id, user("new version", 12))
        # A process still on the release before stores a message as it did: after the last one, the conversation's
        # running total (which it does not know of) left where it was.
        async with raw_database(url) as db:
            await db.execute(
                "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, created_at)"
                " VALUES ($1, 'user', 'old version', 30, 12, $2)", conversation.id, NOW.isoformat()
            )  # fmt: skip
        assert await next_starts_at(store, conversation.id) == 42
        assert_exact(await history(store, conversation.id))
        await assert_totals_kept(url)
