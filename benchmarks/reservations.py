"""Reservations + settlements per second at 500 concurrent callers on SQLite (goal: >= 2,000/s),
and the same on PostgreSQL when a server answers on 127.0.0.1.

Each operation is one reserve (the atomic limit-checked insert) and one settle. The baseline, in
the same run, does the same two writes on a bare table with aiosqlite: no limit checks, no
totals, no triggers. The ratio is what exactness costs.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from benchmarks.support import clock
from bot.billing.budget import Budget
from bot.billing.money import usd_to_nanos
from bot.settings import load_settings
from storage import open_store
from storage.ledger_records import Charge, Units

CONCURRENCY = 500
PER_CALLER = 10  # 5,000 reserve+settle pairs in all


async def ours(folder: Path, url: str | None = None) -> tuple[float, int]:
    store = await open_store(url or f"sqlite:///{folder / 'ledger.sqlite3'}")
    # Limits set (high enough never to refuse) so every reservation evaluates all its checks.
    settings = load_settings(env_file=None, quota_user_daily_usd="1000", quota_team_monthly_usd="100000",
                             quota_user_daily_images=1000, quota_user_daily_audio_minutes=1000)  # fmt: skip
    fixed = datetime(2026, 11, 24, 12, tzinfo=UTC)
    budget = Budget(store.ledger, settings, lambda: fixed)
    cost = usd_to_nanos("0.002")

    async def caller(i: int) -> None:
        charge = Charge("console", "team", f"user{i % 50}", "c1", "chat", "gpt-4.1-mini")
        for _ in range(PER_CALLER):
            async with budget.metered(charge, Units(input_tokens=1000, output_tokens=500), cost) as bill:
                await bill.settle(Units(input_tokens=1000, output_tokens=120), cost // 2)

    start = clock()
    await asyncio.gather(*(caller(i) for i in range(CONCURRENCY)))
    elapsed = clock() - start
    total = (await store.ledger.totals("team", "user0", "2026-11-24", "2026-11")).team_month_nanos
    await store.close()
    assert total == CONCURRENCY * PER_CALLER * (cost // 2), total
    return elapsed, CONCURRENCY * PER_CALLER


async def bare(folder: Path) -> tuple[float, int]:
    db = await aiosqlite.connect(folder / "bare.sqlite3", isolation_level=None)
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, user_id TEXT, cost INTEGER, state TEXT)")
    lock = asyncio.Lock()  # the same discipline as the store: one statement at a time on the connection

    async def caller(i: int) -> None:
        for _ in range(PER_CALLER):
            async with lock:
                [(row_id,)] = await db.execute_fetchall(
                    "INSERT INTO ledger (user_id, cost, state) VALUES (?, ?, 'reserved') RETURNING id",
                    (f"user{i % 50}", 2_000_000),
                )
            async with lock:
                await db.execute_fetchall(
                    "UPDATE ledger SET cost = ?, state = 'settled' WHERE id = ?", (1_000_000, row_id)
                )

    start = clock()
    await asyncio.gather(*(caller(i) for i in range(CONCURRENCY)))
    elapsed = clock() - start
    await db.close()
    return elapsed, CONCURRENCY * PER_CALLER


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        bare_s, n = await bare(Path(tmp))
        ours_s, _ = await ours(Path(tmp))
        postgres = await _on_postgres(Path(tmp))
    result: dict[str, Any] = {
        "concurrency": CONCURRENCY,
        "pairs": n,
        "reserve_settle_per_s": round(n / ours_s),
        "bare_insert_update_per_s": round(n / bare_s),
        "ratio_bare_over_ours": round((n / bare_s) / (n / ours_s), 2),
        "goal": "reserve_settle_per_s >= 2000",
    }
    if postgres is None:
        result["postgres"] = "skipped: no server at 127.0.0.1:5432"
    else:
        result["postgres_reserve_settle_per_s"] = round(n / postgres)
        result["postgres_over_sqlite"] = round(ours_s / postgres, 2)
    return result


async def _on_postgres(folder: Path) -> float | None:
    """Seconds for the same run on a fresh PostgreSQL database, or None when no server answers."""
    from tests.harness.stores import fresh_database, postgres_reachable

    if await postgres_reachable() is not None:
        return None
    async with fresh_database("postgres", folder) as url:
        seconds, _ = await ours(folder, url)
    return seconds
