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


async def measure(folder: Path, count: int) -> tuple[dict[str, Any], int]:
    path = folder / f"window-{count}.sqlite3"
    store = await SQLiteStore.open(path)
    conv = await store.active_conversation(ConversationKey("console", "local", "c1"), datetime.now(UTC))
    fill(path, conv.id, count)
    times: list[float] = []
    size = 0
    for _ in range(REPEATS):
        start = clock()
        window = await store.window(conv.id, BUDGET)
        times.append(clock() - start)
        size = len(window)
    await store.close()
    return summarize(times), size


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        small, small_size = await measure(Path(tmp), 100)
        large, large_size = await measure(Path(tmp), 100_000)
    assert small_size == large_size == BUDGET // TOKENS_PER_MESSAGE
    return {
        "window_messages": small_size,
        "history_100": small,
        "history_100000": large,
        "ratio_p50": round(large["p50_us"] / small["p50_us"], 2),
        "goal": "ratio_p50 <= 1.5",
    }
