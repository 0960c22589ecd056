"""Context build with 100 vs 100,000 stored messages in one conversation: the cost must track the
window, not the history. Both windows hold the same number of messages (the budget is the same)."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.support import clock, summarize
from storage import ConversationKey
from storage.sqlite import SQLiteStore

TOKENS_PER_MESSAGE = 50
BUDGET = 4_000  # 80 messages: fewer than the small history holds, so both windows are the same size
REPEATS = 300


def fill(path: Path, conversation_id: int, count: int) -> None:
    """Bulk-insert `count` messages with consistent running token sums (set-up, not measured)."""
    now = datetime.now(UTC).isoformat()
    rows = (
        (conversation_id, "user" if i % 2 == 0 else "assistant", f"message {i} " + "word " * 40,
         TOKENS_PER_MESSAGE, i * TOKENS_PER_MESSAGE, now)
        for i in range(count)
    )  # fmt: skip
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


async def opened(folder: Path, count: int) -> tuple[SQLiteStore, int]:
    """A store holding one conversation of `count` messages, and the conversation's id."""
    path = folder / f"window-{count}.sqlite3"
    store = await SQLiteStore.open(path)
    conv = await store.active_conversation(ConversationKey("console", "local", "c1"), datetime.now(UTC))
    fill(path, conv.id, count)
    return store, conv.id


async def timed_window(store: SQLiteStore, conversation_id: int) -> tuple[float, int]:
    start = clock()
    window = await store.window(conversation_id, BUDGET)
    return clock() - start, len(window)


async def measure(folder: Path, count: int) -> tuple[dict[str, Any], int]:
    """One history size alone."""
    store, conv = await opened(folder, count)
    try:
        timings = [await timed_window(store, conv) for _ in range(REPEATS)]
    finally:
        await store.close()
    return summarize([t for t, _ in timings]), timings[-1][1]


async def run() -> dict[str, Any]:
    """Both sizes measured in alternation, so drift on a shared machine touches both alike."""
    with tempfile.TemporaryDirectory() as tmp:
        small_store, small_conv = await opened(Path(tmp), 100)
        large_store, large_conv = await opened(Path(tmp), 100_000)
        small_times: list[float] = []
        large_times: list[float] = []
        sizes: set[int] = set()
        try:
            for i in range(REPEATS):
                pair = [(small_store, small_conv, small_times), (large_store, large_conv, large_times)]
                for store, conv, times in pair if i % 2 else reversed(pair):
                    seconds, size = await timed_window(store, conv)
                    times.append(seconds)
                    sizes.add(size)
        finally:
            await small_store.close()
            await large_store.close()
    assert sizes == {BUDGET // TOKENS_PER_MESSAGE}
    small, large = summarize(small_times), summarize(large_times)
    return {
        "window_messages": BUDGET // TOKENS_PER_MESSAGE,
        "history_100": small,
        "history_100000": large,
        "ratio_p50": round(large["p50_us"] / small["p50_us"], 2),
        "goal": "ratio_p50 <= 1.5",
    }
