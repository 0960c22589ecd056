"""What the benchmarks share: a model that answers at once, a responder that discards, timing stats."""

from __future__ import annotations

import asyncio
import statistics
import time
import zlib
from collections.abc import Sequence
from typing import Any, Unpack

from bot.memory.embeddings import Embedded, unit_vectors
from bot.providers.llm import ChatOptions, ChatResult, Finish, PromptMessage
from storage import ModelUsage


class InstantModel:
    """A ChatModel that answers at once, so a benchmark measures our code, not a network."""

    def __init__(
        self, reply: str = "An answer of a dozen or so tokens, streamed in one piece.", delay: float = 0
    ) -> None:
        self.reply = reply
        self.delay = delay  # seconds the "model" takes, to measure concurrency
        self.calls = 0

    async def chat(
        self, messages: Sequence[PromptMessage], *, model: str, **options: Unpack[ChatOptions]
    ) -> ChatResult:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        on_text = options.get("on_text")
        if on_text is not None:
            await on_text(self.reply)
        return ChatResult(self.reply, ModelUsage(model, 100, 12), Finish.DONE)


class InstantEmbeddings:
    """An EmbeddingModel that answers at once with deterministic pseudo-random unit vectors."""

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        import numpy as np  # here, so that a benchmark's child process loads numpy only if the bot does

        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(dimensions or 512) for t in texts]
        return Embedded(unit_vectors(row.tolist() for row in rows), 10 * len(texts))


class DiscardingStream:
    async def append(self, text: str) -> None:
        pass

    async def finish(self) -> None:
        pass

    async def abandon(self) -> None:
        pass


class DiscardingResponder:
    """A Responder that drops everything (and counts errors, which a benchmark must not have)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def send_text(self, text: str, *, private: bool = False) -> None:
        pass

    def stream(self) -> DiscardingStream:
        return DiscardingStream()

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        pass

    async def show_status(self, text: str, *, private: bool = False) -> None:
        pass

    async def send_error(self, message: str) -> None:
        self.errors.append(message)


def summarize(seconds: list[float]) -> dict[str, Any]:
    """p50/p99/mean in microseconds and the count."""
    ordered = sorted(seconds)
    return {
        "n": len(ordered),
        "p50_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6, 1),
        "mean_us": round(statistics.fmean(ordered) * 1e6, 1),
    }


def clock() -> float:
    return time.perf_counter()
