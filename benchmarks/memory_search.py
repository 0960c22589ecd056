"""/search latency over 10,000 and 1,000,000 stored vectors, on SQLite and (when a server answers) PostgreSQL.

What is timed is `Memory.nearest` over one team's every channel: the pages of vectors read from
the database and scored with numpy, the top five kept, their messages fetched. The baseline, in
the same run, is the same top five from the same vectors already in one in-RAM numpy matrix:
the fastest exact search there is, and the one that needs every vector in memory. The ratio is
what reading from the database costs; `peak_alloc_mb` (tracemalloc, one more query) shows the
scan's memory stays flat while the in-RAM matrix grows with the vectors (`in_ram_matrix_mb`).

Sizes: BENCH_MEMORY_SIZES (comma-separated, default 10000,1000000).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import tracemalloc
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.support import clock
from bot.billing.budget import Budget
from bot.billing.prices import PriceTable
from bot.memory.embeddings import Embedded
from bot.memory.semantic import Memory
from bot.providers.tokens import TokenCounter
from bot.settings import load_settings
from storage import Store, open_store
from storage.memory_records import VectorScope

DIMS = 512
CHANNELS = 20
PER_CONVERSATION = 50
QUERIES = 3
TOP = 5
CHUNK = 50_000
Vectors = npt.NDArray[np.float32]
KEY = f"text-embedding-3-small@{DIMS}"
START = datetime(2026, 1, 1, tzinfo=UTC)


class NoEmbeddings:
    """The benchmark scores stored vectors against given queries: nothing is embedded."""

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        raise AssertionError("not called")


def vectors(n: int, seed: int = 7) -> Vectors:
    """`n` random unit vectors (float32), made in chunks to keep the peak low."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIMS), dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        chunk = rng.standard_normal((stop - start, DIMS), dtype=np.float32)
        out[start:stop] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def rows(matrix: Vectors, start: int, stop: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[Any]]:
    """Conversations, messages and vector rows for messages start+1 … stop (ids from 1)."""
    conversations, messages, stored = [], [], []
    for i in range(start, stop):
        mid, conv = i + 1, i // PER_CONVERSATION + 1
        channel = f"c{conv % CHANNELS}"
        when = (START + timedelta(seconds=i)).isoformat()
        if i % PER_CONVERSATION == 0:
            conversations.append((conv, "console", "team", channel, f"t{conv}", when))
        messages.append((mid, conv, "user", f"message {mid}", 5, 5 * (i % PER_CONVERSATION), when))
        stored.append((mid, conv, "console", "team", channel, when, KEY, matrix[i].tobytes()))
    return conversations, messages, stored


MESSAGE_COLUMNS = ["id", "conversation_id", "role", "content", "tokens", "tokens_before", "created_at", "embed_state"]
VECTOR_COLUMNS = ["message_id", "conversation_id", "platform", "team_id", "channel_id", "created_at", "model", "vector"]
CONVERSATION_COLUMNS = ["id", "platform", "team_id", "channel_id", "thread_id", "created_at"]
MESSAGES_SQL = f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES"
VECTORS_SQL = f"INSERT INTO message_vectors ({', '.join(VECTOR_COLUMNS)}) VALUES"
CONVERSATIONS_SQL = f"INSERT INTO conversations ({', '.join(CONVERSATION_COLUMNS)}) VALUES"


async def fill_sqlite(path: Path, matrix: Vectors) -> None:
    await (await open_store(f"sqlite:///{path}")).close()  # the schema
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = OFF")
        for start in range(0, len(matrix), CHUNK):
            conversations, messages, stored = rows(matrix, start, min(len(matrix), start + CHUNK))
            db.executemany(f"{CONVERSATIONS_SQL} (?, ?, ?, ?, ?, ?)", conversations)
            db.executemany(f"{MESSAGES_SQL} (?, ?, ?, ?, ?, ?, ?, 1)", messages)
            db.executemany(f"{VECTORS_SQL} (?, ?, ?, ?, ?, ?, ?, ?)", stored)
            db.commit()


async def fill_postgres(url: str, matrix: Vectors) -> None:
    import asyncpg

    await (await open_store(url)).close()
    conn = await asyncpg.connect(url)
    try:
        for start in range(0, len(matrix), CHUNK):
            conversations, messages, stored = rows(matrix, start, min(len(matrix), start + CHUNK))
            await conn.copy_records_to_table("conversations", records=conversations, columns=CONVERSATION_COLUMNS)
            await conn.copy_records_to_table("messages", records=[(*m, 1) for m in messages], columns=MESSAGE_COLUMNS)
            await conn.copy_records_to_table("message_vectors", records=stored, columns=VECTOR_COLUMNS)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def memory_on(store: Store) -> Memory:
    settings = load_settings(env_file=None, openai_api_key="unused", embedding_dimensions=DIMS)
    return Memory(
        settings=settings,
        store=store,
        model=NoEmbeddings(),
        budget=Budget(store.ledger, settings, lambda: START),
        prices=PriceTable.load(None, frozenset()),
        tokens=TokenCounter.for_model(settings.chat_model),
        clock=lambda: START,
    )


async def time_ours(url: str, queries: Vectors) -> tuple[list[float], list[list[int]], float]:
    """Seconds per query and the ids found, through the Store; and the most memory one query allocated."""
    store = await open_store(url)
    try:
        memory = memory_on(store)
        scope = VectorScope("console", "team", KEY, channels=[f"c{i}" for i in range(CHANNELS)])
        asked = [array("f", query.tolist()) for query in queries]  # as Memory makes them
        await memory.nearest(scope, asked[0], TOP)  # warm-up, as for the baseline
        seconds, found = [], []
        for query in asked:
            start = clock()
            hits = await memory.nearest(scope, query, TOP)
            seconds.append(clock() - start)
            found.append([h.message_id for h in hits])
        tracemalloc.start()
        await memory.nearest(scope, asked[0], TOP)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return seconds, found, peak
    finally:
        await store.close()


def time_in_ram(matrix: Vectors, queries: Vectors) -> tuple[list[float], list[list[int]]]:
    seconds, found = [], []
    _ = matrix @ queries[0]  # warm-up: the first product pays for BLAS's start-up
    for query in queries:
        start = clock()
        scores = matrix @ query
        top = np.argpartition(-scores, TOP)[:TOP]
        top = top[np.argsort(-scores[top])]
        seconds.append(clock() - start)
        found.append([int(i) + 1 for i in top])
    return seconds, found


def figures(seconds: list[float], in_ram: list[float], n: int, peak_mb: float) -> dict[str, Any]:
    ours, baseline = float(np.median(seconds)), float(np.median(in_ram))
    return {
        "p50_ms": round(ours * 1000, 1),
        "in_ram_p50_ms": round(baseline * 1000, 2),
        "ratio_vs_in_ram": round(ours / baseline, 1),
        "us_per_vector": round(ours * 1e6 / n, 2),
        "peak_alloc_mb": round(peak_mb, 1),
        "in_ram_matrix_mb": round(n * DIMS * 4 / 2**20),
    }


async def measure(folder: Path, n: int, postgres_url: str | None) -> dict[str, Any]:
    matrix = vectors(n)
    queries = vectors(QUERIES, seed=11)
    in_ram, expected = time_in_ram(matrix, queries)
    result: dict[str, Any] = {"vectors": n, "dims": DIMS}
    path = folder / f"memory-{n}.sqlite3"
    start = clock()
    await fill_sqlite(path, matrix)
    result["sqlite_fill_s"] = round(clock() - start, 1)
    seconds, found, growth = await time_ours(f"sqlite:///{path}", queries)
    assert found == expected, "the store's search and the in-RAM search disagree"
    result["sqlite"] = figures(seconds, in_ram, n, growth)
    path.unlink()
    if postgres_url is not None:
        start = clock()
        await fill_postgres(postgres_url, matrix)
        result["postgres_fill_s"] = round(clock() - start, 1)
        seconds, found, growth = await time_ours(postgres_url, queries)
        assert found == expected, "the store's search and the in-RAM search disagree"
        result["postgres"] = figures(seconds, in_ram, n, growth)
    return result


async def run() -> dict[str, Any]:
    from tests.harness.stores import fresh_database, postgres_reachable

    sizes = [int(s) for s in os.environ.get("BENCH_MEMORY_SIZES", "10000,1000000").split(",") if s.strip()]
    has_postgres = await postgres_reachable() is None
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            if has_postgres:
                async with fresh_database("postgres", Path(tmp)) as url:
                    results.append(await measure(Path(tmp), n, url))
            else:
                results.append(await measure(Path(tmp), n, None))
    report: dict[str, Any] = {"sizes": results, "queries_per_size": QUERIES, "top": TOP}
    if not has_postgres:
        report["postgres"] = "skipped: no server at 127.0.0.1:5432"
    return report


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
