"""Memory against self-hosted embedding servers: the model's own vector size, configuration errors that
turn memory off with messages left waiting, and /search's minimum similarity."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.console.adapter import LocalDirectory
from bot.app import open_engine
from bot.memory.semantic import CLAIM_LEASE
from tests.fakes.openai_server import (
    LITELLM_BAD_KEY,
    LITELLM_BUDGET_EXCEEDED,
    LITELLM_DIMENSIONS_UNSUPPORTED,
    LITELLM_UNKNOWN_EMBEDDING_MODEL,
    VLLM_DIMENSIONS_UNSUPPORTED,
    FakeOpenAI,
    Recorded,
    word_vector,
)
from tests.fakes.responder import RecordingResponder
from tests.harness.clock import Clock
from tests.harness.memory import SECRET, START, db_rows, embed_all, say
from tests.harness.messages import message
from tests.harness.stores import fresh_database

PENDING, EMBEDDED = 0, 1
STATES = "SELECT embed_state, count(*) FROM messages GROUP BY embed_state"


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def minilm() -> AsyncIterator[FakeOpenAI]:
    """A LiteLLM proxy in front of all-MiniLM-L6-v2: 384 dimensions, and `dimensions` refused."""
    async with FakeOpenAI(embedding_dims=384, refuse_dimensions=LITELLM_DIMENSIONS_UNSUPPORTED) as fake:
        yield fake


async def test_empty_dimensions_sends_none_and_the_key_records_the_models_own_size(
    make_settings: Any, minilm: FakeOpenAI, clock: Clock, db_url: str
) -> None:
    settings = make_settings(openai_base_url=minilm.base_url, embedding_dimensions=None)
    async with open_engine(settings, clock=clock) as engine:
        assert engine.memory.key is None  # not known before the first vectors
        await say(engine, SECRET, channel="ops")
        await embed_all(engine)
        found = await say(engine, "/search Zephyr deploy freeze", LocalDirectory(engine.stored_messages), channel="ops")
    assert all("dimensions" not in (r.json or {}) for r in minilm.requests_to("/v1/embeddings"))
    assert db_rows(db_url, "SELECT DISTINCT model, length(vector) FROM message_vectors") == [
        ("text-embedding-3-small@384", 384 * 4)
    ]
    assert SECRET[:40] in found.texts[0][0]


async def test_search_learns_the_size_first_after_a_restart(
    make_settings: Any, minilm: FakeOpenAI, clock: Clock
) -> None:
    settings = make_settings(openai_base_url=minilm.base_url, embedding_dimensions=None)
    async with open_engine(settings, clock=clock) as engine:
        await say(engine, SECRET, channel="ops")
        await embed_all(engine)
    async with open_engine(settings, clock=clock) as engine:  # a restart: the size is unknown again
        found = await say(engine, "/search Zephyr deploy freeze", LocalDirectory(engine.stored_messages), channel="ops")
    assert SECRET[:40] in found.texts[0][0]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_server_that_ignores_dimensions_is_not_paid_again_at_every_start(
    make_settings: Any, clock: Clock, kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.memory.semantic")
    async with (
        FakeOpenAI(embedding_dims=384, ignore_dimensions=True) as server,  # LiteLLM with drop_params
        fresh_database(kind, tmp_path) as url,
    ):
        settings = make_settings(openai_base_url=server.base_url, embedding_dimensions=512, database_url=url)
        async with open_engine(settings, clock=clock) as engine:
            await say(engine, SECRET, channel="ops")
            await embed_all(engine)
        embedded = len(server.embedded_texts())
        for restart in range(2):
            async with open_engine(settings, clock=clock) as engine:
                stop = asyncio.Event()
                async with engine.background(stop):  # what a start does first: look for other models' vectors
                    pass
                found = await say(
                    engine, "/search Zephyr deploy freeze", LocalDirectory(engine.stored_messages), channel="ops"
                )
                assert SECRET[:40] in found.texts[0][0], restart  # at once, not once all is embedded again
                await embed_all(engine)
        # Nothing embedded again: only the two searches' queries were sent.
        assert server.embedded_texts()[embedded:] == ["Zephyr deploy freeze"] * 2
        assert "will be embedded again" not in caplog.text
        # Once the server honours the size (its real size changed), the stored messages are embedded again.
        server.ignore_dimensions = False
        async with open_engine(settings, clock=clock) as engine:
            await say(engine, "a new message", channel="ops")
            await embed_all(engine)
            found = await say(
                engine, "/search Zephyr deploy freeze", LocalDirectory(engine.stored_messages), channel="ops"
            )
            assert SECRET[:40] in found.texts[0][0]
        assert SECRET in server.embedded_texts()[embedded:]
        assert "will be embedded again with text-embedding-3-small@512" in caplog.text


NO_DIMENSIONS = "the embedding model 'text-embedding-3-small' does not take EMBEDDING_DIMENSIONS=512"
NO_MODEL = "this model server has no embedding model 'text-embedding-3-small'; see EMBEDDING_MODEL"
NO_KEY = "the model server refused the bot's key for embeddings; see OPENAI_API_KEY"


@pytest.mark.parametrize(
    ("recorded", "reason"),
    [
        (LITELLM_DIMENSIONS_UNSUPPORTED, NO_DIMENSIONS),
        (VLLM_DIMENSIONS_UNSUPPORTED, NO_DIMENSIONS),
        (LITELLM_UNKNOWN_EMBEDDING_MODEL, NO_MODEL),
        (LITELLM_BAD_KEY, NO_KEY),
    ],
    ids=["litellm-dimensions", "vllm-dimensions", "litellm-unknown-model", "litellm-401"],
)
async def test_a_configuration_error_turns_memory_off_once_and_leaves_messages_waiting(
    make_settings: Any,
    clock: Clock,
    db_url: str,
    recorded: Recorded,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeOpenAI() as server, open_engine(
        make_settings(openai_base_url=server.base_url), clock=clock
    ) as engine:  # fmt: skip
        for n in range(3):
            await say(engine, f"message {n} about the launch")
        server.enqueue_embeddings(recorded)
        await engine.memory.embed_pending()
        assert not engine.memory.enabled
        responder = RecordingResponder()
        await engine.handle(message("/search launch"), responder)
    assert responder.errors == [f"Search is off on this bot ({reason})."]
    assert db_rows(db_url, STATES) == [(PENDING, 6)]  # nothing skipped
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "memory" in r.getMessage()]
    assert len(errors) == 1 and reason in errors[0]


async def test_once_the_setting_is_fixed_the_waiting_messages_are_embedded(
    make_settings: Any, minilm: FakeOpenAI, clock: Clock, db_url: str
) -> None:
    async with open_engine(make_settings(openai_base_url=minilm.base_url), clock=clock) as engine:
        await say(engine, "the launch is on Thursday")
        await engine.memory.embed_pending()
        assert not engine.memory.enabled
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)  # the failed attempt's claim lapses
    fixed = make_settings(openai_base_url=minilm.base_url, embedding_dimensions=None)
    async with open_engine(fixed, clock=clock) as engine:
        await embed_all(engine)
        assert engine.memory.enabled
    assert db_rows(db_url, STATES) == [(EMBEDDED, 2)]


async def test_a_model_that_refuses_every_text_is_a_setup_fault_not_a_reason_to_skip_them(
    make_settings: Any, clock: Clock, db_url: str
) -> None:
    unreadable = Recorded(400, {"error": {"message": "input type not supported by this backend", "type": "x"}})
    async with FakeOpenAI() as server, open_engine(
        make_settings(openai_base_url=server.base_url), clock=clock
    ) as engine:  # fmt: skip
        await say(engine, "hello")
        server.enqueue_embeddings(unreadable, unreadable)  # the batch, then the probe
        await engine.memory.embed_pending()
        assert not engine.memory.enabled
    assert db_rows(db_url, STATES) == [(PENDING, 2)]


async def test_search_shows_no_unrelated_messages_as_matches(make_settings: Any, clock: Clock) -> None:
    async with open_engine(make_settings(search_min_similarity=0.3), clock=clock) as engine:
        await say(engine, SECRET, channel="ops")
        await embed_all(engine)
        unrelated = await say(
            engine, "/search purple elephants dancing", LocalDirectory(engine.stored_messages), channel="ops"
        )
        related = await say(
            engine, "/search Zephyr deploy freeze", LocalDirectory(engine.stored_messages), channel="ops"
        )
    assert unrelated.texts == [
        ("No good matches for “purple elephants dancing” in the conversations you can see.", True)
    ]
    assert SECRET[:40] in related.texts[0][0]


async def test_a_gateways_spent_budget_postpones_embedding_and_is_logged_once(
    make_settings: Any, fake_openai: FakeOpenAI, clock: Clock, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_engine(make_settings(), clock=clock) as engine:
        await say(engine, "hello")
        fake_openai.enqueue_embeddings(LITELLM_BUDGET_EXCEEDED, LITELLM_BUDGET_EXCEEDED)
        await engine.memory.embed_pending()
        clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
        await engine.memory.embed_pending()
        assert engine.memory.enabled
        assert db_rows(db_url, STATES) == [(PENDING, 2)]
        clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
        await embed_all(engine)  # the budget reset: they are embedded
    assert db_rows(db_url, STATES) == [(EMBEDDED, 2)]
    budget_lines = [r for r in caplog.records if "budget spent" in r.getMessage()]
    assert len(budget_lines) == 1 and budget_lines[0].levelno == logging.ERROR


@pytest.mark.parametrize("ignores_it", [False, True], ids=["base64", "numbers"])
async def test_vectors_are_asked_for_in_base64_and_stored_alike_from_a_server_that_sends_numbers(
    make_settings: Any, clock: Clock, db_url: str, ignores_it: bool
) -> None:
    async with FakeOpenAI(embedding_dims=64, ignore_encoding_format=ignores_it) as fake:
        settings = make_settings(openai_base_url=fake.base_url, embedding_dimensions=None)
        async with open_engine(settings, clock=clock) as engine:
            await say(engine, SECRET, channel="ops")
            await embed_all(engine)
            found = await say(
                engine, "/search Zephyr deploy freeze", LocalDirectory(engine.stored_messages), channel="ops"
            )
    assert {(r.json or {}).get("encoding_format") for r in fake.requests_to("/v1/embeddings")} == {"base64"}
    stored = db_rows(db_url, "SELECT m.content, v.vector FROM message_vectors v JOIN messages m ON m.id = v.message_id")
    vector = dict(stored)[SECRET]
    # The fake's vector is unit length already: stored as it was sent, little-endian float32.
    assert vector == struct.pack("<64f", *word_vector(SECRET, 64))
    assert SECRET[:40] in found.texts[0][0]
