"""Semantic memory end to end: the fake OpenAI server embeds (similar texts are near), the store keeps vectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.console.adapter import LocalDirectory
from adapters.slack.directory import SlackChannels, SlackDirectory
from bot.app import open_engine
from bot.chat.engine import Engine
from bot.chat.window import RECALL_HEADER
from bot.memory.semantic import CLAIM_LEASE, MEMORY_PAYER
from bot.settings import Settings
from storage.memory_records import MessageVector
from tests.fakes.openai_server import (
    EmbeddingReply,
    FakeOpenAI,
    Reply,
    ServerError,
    UnknownModel,
    count_tokens,
    prompt_tokens,
    word_vector,
)
from tests.fakes.responder import RecordingResponder
from tests.fakes.slack_api import FakeSlack
from tests.harness.clock import Clock
from tests.harness.memory import SECRET, START, db_rows, embed_all, say
from tests.harness.messages import message

FILLER = "Note {n}: gardening chat about tomatoes, cucumbers, compost, mulch, watering and sunny balconies."


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def memory_engine(make_settings: Any, clock: Clock) -> AsyncIterator[Engine]:
    # Room for about seven filler exchanges: older ones fall out of the window.
    settings: Settings = make_settings(max_context_tokens=700, max_output_tokens=100, memory_recall_tokens=150)
    async with open_engine(settings, clock=clock) as engine:
        yield engine


async def test_the_background_embeds_in_batches_metered_to_the_team(
    memory_engine: Engine, fake_openai: FakeOpenAI, db_url: str
) -> None:
    await say(memory_engine, "hello there")
    await say(memory_engine, "how are you")
    assert await memory_engine.memory.embed_pending() == 4  # two questions, two replies
    assert await memory_engine.memory.embed_pending() == 0
    [request] = fake_openai.requests_to("/v1/embeddings")
    assert request.json is not None and request.json["dimensions"] == 512
    assert request.json["model"] == "text-embedding-3-small"
    assert fake_openai.embedded_texts() == ["hello there", "echo: hello there", "how are you", "echo: how are you"]
    assert db_rows(db_url, "SELECT count(*), min(length(vector)) FROM message_vectors") == [(4, 512 * 4)]
    tokens = sum(count_tokens(t) for t in fake_openai.embedded_texts())
    # text-embedding-3-small: $0.02 per 1M tokens = 20 nano-dollars a token.
    ledger = "SELECT user_id, kind, state, input_tokens, cost_nanos FROM usage_ledger WHERE kind = 'embedding'"
    assert db_rows(db_url, ledger) == [(MEMORY_PAYER, "embedding", "settled", tokens, 20 * tokens)]


async def test_recall_brings_back_the_relevant_old_message_within_the_budget(
    memory_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    await say(memory_engine, SECRET)
    for n in range(12):
        await say(memory_engine, FILLER.format(n=n))
    await embed_all(memory_engine)
    before = len(fake_openai.chat_requests())
    await say(memory_engine, "Who owns the rollback plan for the Zephyr deploy freeze?")
    [request] = fake_openai.chat_requests()[before:]
    messages = request["messages"]
    recalled = [m["content"] for m in messages if m["role"] == "system" and m["content"].startswith(RECALL_HEADER)]
    assert len(recalled) == 1 and SECRET in recalled[0]
    assert "gardening" not in recalled[0]  # unrelated old messages stay out
    window = [m["content"] for m in messages if m["role"] != "system"]
    assert SECRET not in window and window[-1].startswith("Who owns")
    settings = memory_engine.settings
    assert prompt_tokens(messages) <= settings.input_token_budget
    assert count_tokens(recalled[0]) + 3 <= settings.memory_recall_tokens


async def test_no_recall_while_the_whole_conversation_fits(memory_engine: Engine, fake_openai: FakeOpenAI) -> None:
    await say(memory_engine, SECRET)
    await embed_all(memory_engine)
    await say(memory_engine, "Who owns the rollback plan?")
    assert all(not m["content"].startswith(RECALL_HEADER) for m in fake_openai.chat_requests()[-1]["messages"])
    assert len(fake_openai.requests_to("/v1/embeddings")) == 1  # the background's batch; no question embedded


@pytest.mark.parametrize("fault", [ServerError(503), EmbeddingReply(delay=2.0)], ids=["server-error", "too-slow"])
async def test_a_failed_or_slow_question_embedding_never_stops_the_reply(
    make_settings: Any, fake_openai: FakeOpenAI, clock: Clock, db_url: str, fault: Any
) -> None:
    settings = make_settings(max_context_tokens=700, max_output_tokens=100, memory_query_timeout=0.5)
    async with open_engine(settings, clock=clock) as engine:
        await say(engine, SECRET)
        for n in range(12):
            await say(engine, FILLER.format(n=n))
        await embed_all(engine)
        fake_openai.enqueue_embeddings(fault)
        reply = await say(engine, "Who owns the rollback plan?")
    assert reply.streams[-1].text == "echo: Who owns the rollback plan?"
    assert all(not m["content"].startswith(RECALL_HEADER) for m in fake_openai.chat_requests()[-1]["messages"])
    # The failed question's reservation was given back; nothing is left held.
    assert db_rows(db_url, "SELECT count(*) FROM usage_ledger WHERE state = 'reserved'") == [(0,)]


async def test_a_failed_batch_is_retried_after_its_lease_and_only_a_refused_message_is_skipped(
    memory_engine: Engine, fake_openai: FakeOpenAI, clock: Clock, db_url: str
) -> None:
    await say(memory_engine, "first")
    fake_openai.enqueue_embeddings(ServerError(500))
    assert await memory_engine.memory.embed_pending() == 2
    assert await memory_engine.memory.embed_pending() == 0  # still claimed by the failed attempt
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    assert await memory_engine.memory.embed_pending() == 2
    assert db_rows(db_url, "SELECT count(*) FROM message_vectors") == [(2,)]

    # The model refuses one message of the next batch: that one is skipped for good, the other is embedded.
    fake_openai.refused_words.add("forbidden")
    fake_openai.enqueue(Reply("noted"))
    await say(memory_engine, "second, with a forbidden word")
    assert await memory_engine.memory.embed_pending() == 2
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    assert await memory_engine.memory.embed_pending() == 0  # skipped for good: it would be refused again
    assert db_rows(db_url, "SELECT embed_state, count(*) FROM messages GROUP BY embed_state") == [(1, 3), (2, 1)]
    assert db_rows(db_url, "SELECT content FROM messages WHERE embed_state = 2") == [("second, with a forbidden word",)]
    assert db_rows(db_url, "SELECT count(*) FROM usage_ledger WHERE state = 'reserved'") == [(0,)]


async def test_forget_removes_the_users_vectors(memory_engine: Engine, db_url: str) -> None:
    await say(memory_engine, "mine", user="u1")
    await say(memory_engine, "theirs", user="u2", channel="c2")
    await embed_all(memory_engine)
    await say(memory_engine, "/forget confirm", user="u1")
    assert db_rows(db_url, "SELECT m.content FROM message_vectors v JOIN messages m ON m.id = v.message_id"
                           " ORDER BY m.id") == [("theirs",), ("echo: theirs",)]  # fmt: skip


async def test_search_in_the_console_finds_by_meaning_with_dates(
    memory_engine: Engine, fake_openai: FakeOpenAI, clock: Clock
) -> None:
    await say(memory_engine, SECRET, channel="ops")
    await say(memory_engine, FILLER.format(n=1), channel="garden")
    await embed_all(memory_engine)
    reply = await say(
        memory_engine,
        "/search Zephyr deploy freeze rollback",
        LocalDirectory(memory_engine.stored_messages),
        channel="garden",
    )
    [(text, private)] = reply.texts
    assert private
    lines = text.splitlines()
    assert lines[0] == "Top matches for “Zephyr deploy freeze rollback”:"
    assert lines[1].startswith("1. 2026-11-02 · u1 · ") and "channel ops" in lines[1]
    assert SECRET[:60] in lines[2]
    assert "gardening" not in text.split("\n3.")[0]  # the best two are the secret and its echo


async def test_search_arguments_are_checked(memory_engine: Engine, clock: Clock) -> None:
    await say(memory_engine, SECRET, channel="ops")
    await embed_all(memory_engine)
    cases = {
        "/search": "Say what to look for after /search.",
        "/search days:0 freeze": "days:0 must be a whole number of days from 1 to 3,650.",
        "/search days:soon freeze": "days:soon must be a whole number",
        "/search channel:#ops freeze": "'#ops' is not a channel",
    }
    for command, expected in cases.items():
        responder = RecordingResponder()
        await memory_engine.handle(message(command), responder)
        assert len(responder.errors) == 1 and expected in responder.errors[0], (command, responder.errors)
        assert "Usage: /search" in responder.errors[0]
    clock.advance(days=10)
    recent = await say(memory_engine, "/search freeze days:7", LocalDirectory(memory_engine.stored_messages))
    assert recent.texts == [("No good matches for “freeze” in the conversations you can see.", True)]
    in_ops = await say(
        memory_engine, "/search Zephyr deploy freeze channel:ops days:30", LocalDirectory(memory_engine.stored_messages)
    )
    assert SECRET[:40] in in_ops.texts[0][0]
    elsewhere = await say(
        memory_engine, "/search freeze channel:here", LocalDirectory(memory_engine.stored_messages), channel="garden"
    )
    assert elsewhere.texts == [("Nothing you can see in that channel has been remembered yet.", True)]


async def test_without_the_platforms_word_only_the_current_channel_is_searched(memory_engine: Engine) -> None:
    await say(memory_engine, SECRET, channel="ops")
    await embed_all(memory_engine)
    elsewhere = await say(memory_engine, "/search Zephyr freeze", channel="garden")
    assert elsewhere.texts == [("No good matches for “Zephyr freeze” in the conversations you can see.", True)]
    here = await say(memory_engine, "/search Zephyr freeze", channel="ops")
    assert SECRET[:40] in here.texts[0][0]


async def test_search_off_says_so(make_settings: Any) -> None:
    async with open_engine(make_settings(memory_enabled=False)) as engine:
        responder = RecordingResponder()
        await engine.handle(message("/search anything"), responder)
    assert responder.errors == ["Search is off on this bot (MEMORY_ENABLED=false)."]


async def test_a_server_without_the_embedding_model_turns_memory_off_and_chat_goes_on(
    memory_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    await say(memory_engine, "hello")
    fake_openai.enqueue_embeddings(UnknownModel())
    await memory_engine.memory.embed_pending()
    assert not memory_engine.memory.enabled
    assert (await say(memory_engine, "still there?")).streams[-1].text == "echo: still there?"
    responder = RecordingResponder()
    await memory_engine.handle(message("/search hello"), responder)
    assert responder.errors == [
        "Search is off on this bot (this model server has no embedding model 'text-embedding-3-small';"
        " see EMBEDDING_MODEL)."
    ]
    assert len(fake_openai.requests_to("/v1/embeddings")) == 1


async def test_slack_search_never_shows_a_private_channel_or_someone_elses_dm(
    memory_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    where = {
        "CPUB": "public channel",  # public, the asker is not a member
        "CMINE": "private channel with the asker",
        "GSECRET": "private channel without the asker",
        "DOTHER": "direct message of someone else",
    }
    for channel, label in where.items():
        await say(memory_engine, f"Zephyr freeze notes in the {label}", channel=channel, platform="slack",
                  team="T1", user="UOTHER", thread="171.0001")  # fmt: skip
    await embed_all(memory_engine)
    async with FakeSlack() as slack:
        slack.channels = {
            "CPUB": {"id": "CPUB", "is_channel": True, "is_private": False},
            "CMINE": {"id": "CMINE", "is_channel": True, "is_private": True},
            "GSECRET": {"id": "GSECRET", "is_channel": True, "is_private": True},
            "DOTHER": {"id": "DOTHER", "is_im": True},
        }
        slack.memberships = {"UASK": ["CX1", "CX2", "CMINE", "DASK"]}  # two pages
        channels = SlackChannels(AsyncWebClient(token="xoxb-test", base_url=slack.base_url))
        search = replace(
            message("/search Zephyr freeze notes", user="UASK", channel="DASK", platform="slack", team="T1"),
            platform_directory=SlackDirectory(channels, "UASK", "DASK"),
        )
        responder = RecordingResponder()
        await memory_engine.handle(search, responder)
        [(text, private)] = responder.texts
        assert private
        assert "public channel" in text and "private channel with the asker" in text
        assert "without the asker" not in text and "someone else" not in text
        assert "https://team.slack.example/archives/CPUB/p1710001" in text  # the thread, by permalink
        assert {c["channel"] for c in slack.called("conversations.info")} == {"CPUB", "GSECRET", "DOTHER"}

        # When Slack cannot say who is in what, nothing beyond the public channels is shown.
        slack.broken.add("users.conversations")
        channels = SlackChannels(AsyncWebClient(token="xoxb-test", base_url=slack.base_url))
        responder = RecordingResponder()
        await memory_engine.handle(replace(search, platform_directory=SlackDirectory(channels, "UASK", "DASK")),
                                   responder)  # fmt: skip
        [(text, _)] = responder.texts
        assert "public channel" in text and "private channel" not in text


def test_the_fake_embeds_similar_texts_near_and_unrelated_ones_far() -> None:
    def cosine(a: str, b: str) -> float:
        return sum(x * y for x, y in zip(word_vector(a, 512), word_vector(b, 512), strict=True))

    assert cosine(SECRET, "Who owns the Zephyr rollback plan?") > 0.3
    assert cosine(SECRET, FILLER.format(n=1)) < 0.2


async def test_the_background_task_embeds_soon_after_a_turn_and_redoes_other_models(
    memory_engine: Engine, db_url: str
) -> None:
    await say(memory_engine, "from before the model changed")
    stored = db_rows(db_url, "SELECT id, content FROM messages")
    old = [MessageVector(i, text, b"\0" * 8) for i, text in stored]
    await memory_engine.store.memory.save_vectors("old-model@2", old)
    stop = asyncio.Event()
    models = "SELECT model, count(*) FROM message_vectors GROUP BY model"
    async with memory_engine.background(stop):
        await say(memory_engine, "a new message")
        for _ in range(200):
            if db_rows(db_url, models) == [(memory_engine.memory.key, 4)]:
                break
            await asyncio.sleep(0.02)
    assert stop.is_set()
    assert db_rows(db_url, models) == [(memory_engine.memory.key, 4)]
