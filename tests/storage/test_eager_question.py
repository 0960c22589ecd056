"""A turn's question written with its read of the conversation (`EagerQuestion`), on SQLite and PostgreSQL: what is
stored is what the usual order (read, decide, store) stores; a conversation whose system prompt may not leave the
question room gets it the usual way, so one too long is refused with nothing written; and the running totals stay
exact when the turn meets another writer of its conversation, or another process starting it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage import ChannelSettings, Conversation, ConversationKey, NewMessage, PlatformMessage, Store, WindowMessage
from storage.turn_records import EagerQuestion, OpenedTurn, Question, TurnOpening
from tests.harness.store_contract import NOW
from tests.harness.stores import assert_totals_kept, fresh_database, opened

KEY = ConversationKey("slack", "T1", "C1", "171.1")
ROOMY = 10_000  # prompt bytes: any persona of this test leaves room


class TooLong(Exception):
    """What the caller raises between the statements when the question has no room in the conversation."""


def user(text: str, tokens: int) -> NewMessage:
    return NewMessage(role="user", content=text, tokens=tokens, created_at=NOW, author_id="u1")


async def ask(
    store: Store,
    key: ConversationKey,
    text: str,
    tokens: int,
    *,
    prompt_bytes: int = ROOMY,
    default_fits: bool = True,
    window_tokens: int = 1_000,
) -> OpenedTurn:
    """A turn opened as the engine opens one: the question offered eagerly, refused by `question` where the
    conversation's persona (its system prompt) is longer than `prompt_bytes` or, on the default one, unless
    `default_fits` (as the engine's room rule would decide for such a budget); its window `window_tokens`, at most
    the widest offered (1,000)."""
    message = user(text, tokens)
    eager = EagerQuestion(message, prompt_bytes, default_fits, widest_window=1_000)

    def question(conversation: Conversation) -> Question:
        prompt = conversation.system_prompt
        if (not default_fits) if prompt is None else len(prompt.encode()) > prompt_bytes:
            raise TooLong
        return Question(message, window_tokens)

    return await store.open_turn(TurnOpening(key, NOW, question, lambda *_: None, eager=eager))


def shape(window: list[WindowMessage]) -> list[tuple[str, int, int]]:
    return [(m.content, m.tokens, m.tokens_before) for m in window]


async def test_a_question_written_with_the_read_is_stored_and_windowed_as_one_written_after_it(url: str) -> None:
    plain_key = ConversationKey("slack", "T1", "C1", "plain")
    async with opened(url) as store:
        first = await ask(store, KEY, "q0", 10)  # a new thread: started with its question
        await assert_totals_kept(url)  # the started conversation's running total counts the question
        eager_turns = [first, *[await ask(store, KEY, f"q{i}", 10 + i) for i in (1, 2)]]
        plain_turns = [
            await store.open_turn(TurnOpening(plain_key, NOW, lambda _, i=i: Question(user(f"q{i}", 10 + i), 1_000),  # type: ignore[misc]
                                              lambda *_: None))
            for i in range(3)
        ]  # fmt: skip
        for eager, plain in zip(eager_turns, plain_turns, strict=True):
            assert shape(eager.window) == shape(plain.window)
            assert eager.question.content == plain.question.content and eager.question.id == eager.window[-1].id
        conversation = first.conversation
        assert {t.conversation.id for t in eager_turns} == {conversation.id}
        assert conversation == await store.active_conversation(KEY, NOW)
        assert [m.content for m in await store.messages(conversation.id)] == ["q0", "q1", "q2"]
        assert shape(await store.window(conversation.id, 1_000)) == [("q0", 10, 0), ("q1", 11, 10), ("q2", 12, 21)]
        await assert_totals_kept(url)


async def test_the_window_read_with_the_conversation_is_the_window_read_after_the_question_for_every_budget(
    store: Store,
) -> None:
    conversation = await store.active_conversation(KEY, NOW)
    for i, tokens in enumerate([10, 20, 0, 30, 40]):  # a message of no tokens ties with the one after it
        await store.add_message(conversation.id, user(f"m{i}", tokens))
    for window_tokens in (0, 1, 14, 15, 16, 45, 46, 85, 86, 1_000):
        turn = await ask(store, KEY, f"q{window_tokens}", 15, window_tokens=window_tokens)
        assert turn.window == await store.window(conversation.id, window_tokens), window_tokens
        assert (await store.messages(conversation.id))[-1].id == turn.question.id
    first = await ask(store, ConversationKey("slack", "T1", "C1", "new"), "alone", 15, window_tokens=14)
    assert first.window == [] == await store.window(first.conversation.id, 14)  # the question alone does not fit


@pytest.mark.parametrize("started", [False, True], ids=["new thread", "open conversation"])
async def test_a_persona_that_may_not_leave_room_gets_the_question_after_the_read_and_a_refusal_writes_nothing(
    url: str, started: bool
) -> None:
    async with opened(url) as store:
        await store.set_channel_settings("slack", "T1", "C1", ChannelSettings(persona="p" * 200), "admin", NOW)
        if started:
            await store.active_conversation(KEY, NOW)
        with pytest.raises(TooLong):  # 200 bytes of persona: more than this question surely leaves
            await ask(store, KEY, "long", 50, prompt_bytes=199)
        conversation = await store.active_conversation(KEY, NOW)
        assert conversation.system_prompt == "p" * 200
        assert await store.messages(conversation.id) == []
        await assert_totals_kept(url)  # the refusal moved no running total
        turn = await ask(store, KEY, "short", 5, prompt_bytes=200)  # room enough: stored with the read
        assert turn.conversation.id == conversation.id and shape(turn.window) == [("short", 5, 0)]
        await assert_totals_kept(url)


async def test_a_question_refused_on_the_default_prompt_writes_nothing(store: Store) -> None:
    with pytest.raises(TooLong):
        await ask(store, KEY, "too long for the default prompt", 50, default_fits=False)
    conversation = await store.active_conversation(KEY, NOW)
    assert conversation.system_prompt is None and await store.messages(conversation.id) == []
    assert shape((await ask(store, KEY, "fits", 4)).window) == [("fits", 4, 0)]


async def test_eager_questions_from_two_processes_on_one_new_thread_share_one_conversation_and_exact_totals(
    url: str,
) -> None:
    async with opened(url) as first, opened(url) as second:
        turns = await asyncio.gather(*(ask(store, KEY, f"q{i}", 1 + i) for i in range(10) for store in (first, second)))
        assert len({t.conversation.id for t in turns}) == 1
        window = await first.window(turns[0].conversation.id, 1_000_000)
        assert sorted(m.content for m in window) == sorted(t.question.content for t in turns)
        running = 0
        for message in window:  # each counts every message before it, once
            assert message.tokens_before == running, shape(window)
            running += message.tokens
        assert running == 2 * sum(1 + i for i in range(10))
        await assert_totals_kept(url)


async def test_a_turn_that_waits_for_another_process_storing_a_message_sees_it_in_its_window(tmp_path: Path) -> None:
    import asyncpg

    from storage.postgres.turn_statements import MESSAGE_INSERT
    from storage.sql.store import message_params

    async with fresh_database("postgres", tmp_path) as url, opened(url) as store:
        conversation = (await ask(store, KEY, "first", 3)).conversation
        other = await asyncpg.connect(url)
        try:
            writing = other.transaction()
            await writing.start()  # another process stores a message and holds the conversation's row
            await other.fetchval(MESSAGE_INSERT, *message_params(conversation.id, user("meanwhile", 7)))
            turn = asyncio.ensure_future(ask(store, KEY, "waited", 5))
            await asyncio.sleep(0.3)
            assert not turn.done()  # the turn's statement waits for the row
            await writing.commit()
            opened_turn = await asyncio.wait_for(turn, 10)
        finally:
            await other.close()
        assert shape(opened_turn.window) == [("first", 3, 0), ("meanwhile", 7, 3), ("waited", 5, 10)]
        await assert_totals_kept(url)


async def test_a_turn_that_waits_for_an_edit_of_the_same_size_sees_the_new_text_in_its_window(tmp_path: Path) -> None:
    import asyncpg

    async with fresh_database("postgres", tmp_path) as url, opened(url) as store, opened(url) as editor:
        conversation = await store.active_conversation(KEY, NOW)
        said = NewMessage("user", "typo", 4, NOW, author_id="u1", platform_message_id="m1")
        await store.add_message(conversation.id, said)
        holder = await asyncpg.connect(url)
        try:
            holding = holder.transaction()
            await holding.start()  # something holds the conversation's row: the edit, then the turn, queue for it
            await holder.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", conversation.id)
            where = PlatformMessage("slack", "T1", "C1", "m1")
            edit = asyncio.ensure_future(editor.edit_platform_message(where, "u1", "fixed", 4))
            await asyncio.sleep(0.3)
            turn = asyncio.ensure_future(ask(store, KEY, "asked", 5))  # read before the edit commits
            await asyncio.sleep(0.3)
            assert not edit.done() and not turn.done()
            await holding.commit()
            assert await asyncio.wait_for(edit, 10) == 1
            opened_turn = await asyncio.wait_for(turn, 10)
        finally:
            await holder.close()
        assert shape(opened_turn.window) == [("fixed", 4, 0), ("asked", 5, 4)]
        await assert_totals_kept(url)


async def test_a_turn_that_meets_another_process_starting_the_thread_asks_in_the_conversation_it_started(
    tmp_path: Path,
) -> None:
    import asyncpg

    from storage.sql.store import START_CONVERSATION, key_params

    async with fresh_database("postgres", tmp_path) as url, opened(url) as store:
        other = await asyncpg.connect(url)
        try:
            starting = other.transaction()
            await starting.start()  # another process starts the thread's conversation, not yet committed
            [theirs] = await other.fetch(START_CONVERSATION, *key_params(KEY), NOW.isoformat())
            turn = asyncio.ensure_future(ask(store, KEY, "asked", 5))  # finds none open, then meets theirs
            await asyncio.sleep(0.3)
            assert not turn.done()
            await starting.commit()
            opened_turn = await asyncio.wait_for(turn, 10)
        finally:
            await other.close()
        assert opened_turn.conversation.id == theirs[0]
        assert shape(opened_turn.window) == [("asked", 5, 0)]
        assert [m.content for m in await store.messages(theirs[0])] == ["asked"]
        await assert_totals_kept(url)
