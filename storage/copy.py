"""Copy a SQLite database into an empty PostgreSQL one, ids kept, then check every count.

usage_totals is not copied: the ledger's insert trigger rebuilds it from the copied rows, and the
check compares the rebuilt totals with the source's. Likewise each conversation's running token total, which only
PostgreSQL keeps: set from the copied messages, and checked against where the source's conversations end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from storage.base import CopyMismatch, StoreUnavailable
from storage.factory import sqlite_path
from storage.postgres import PostgresStore
from storage.postgres.turn_statements import TOTAL_OF_MESSAGES
from storage.sqlite import SQLiteStore

# Parents before children, so foreign keys hold at every step.
TABLES = (
    "conversations",
    "messages",
    "message_images",
    "message_vectors",
    "embedding_sizes",
    "channel_settings",
    "usage_ledger",
    "quota_limits",
    "quota_changes",
    "deliveries",
    "prompts",
    "prompt_versions",
    "prompt_runs",
    "prompt_ratings",
)


async def copy_sqlite_to_postgres(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every table; returns rows per table (and the checked usage totals). The target must be empty."""
    path = sqlite_path(source_url)
    if isinstance(path, Path) and not path.is_file():
        raise StoreUnavailable(f"no SQLite database at {path}")
    await (await SQLiteStore.open(path)).close()  # bring the source to the latest schema first
    await (await PostgresStore.open(target_url)).close()  # and the target
    copied: dict[str, int] = {}
    async with aiosqlite.connect(path) as source:
        target = await asyncpg.connect(target_url)
        try:
            for table in TABLES:
                if await target.fetchval(f"SELECT count(*) FROM {table}"):
                    raise StoreUnavailable(f"the target is not empty ({table} has rows); copy into a new database")
            async with target.transaction():
                for table in TABLES:
                    copied[table] = await _copy_table(source, target, table)
                    if await target.fetchval(
                        "SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = 'id'",
                        table,
                    ):
                        await target.execute(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(max(id), 0) + 1, false)"
                            f" FROM {table}"
                        )
                await target.execute(f"UPDATE conversations SET tokens_total = {TOTAL_OF_MESSAGES}")
                await _verify(source, target, copied)
        finally:
            await target.close()
    return copied


async def _copy_table(source: aiosqlite.Connection, target: asyncpg.Connection, table: str) -> int:
    source_columns = [row[1] for row in await source.execute_fetchall(f"PRAGMA table_info({table})")]
    types = {
        row[0]: row[1]
        for row in await target.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
        )
    }
    columns = [c for c in source_columns if c in types]
    rows = await source.execute_fetchall(f"SELECT {', '.join(columns)} FROM {table}")
    converted = [
        tuple(_convert(value, types[column]) for value, column in zip(row, columns, strict=True)) for row in rows
    ]
    if converted:
        await target.copy_records_to_table(table, records=converted, columns=columns)
    return len(converted)


def _convert(value: Any, data_type: str) -> Any:
    if value is None:
        return None
    if data_type == "boolean":
        return bool(value)
    if data_type == "double precision":
        return float(value)
    return value


async def _verify(source: aiosqlite.Connection, target: asyncpg.Connection, copied: dict[str, int]) -> None:
    for table, count in copied.items():
        [(expected,)] = await source.execute_fetchall(f"SELECT count(*) FROM {table}")
        actual = await target.fetchval(f"SELECT count(*) FROM {table}")
        if not expected == actual == count:
            raise CopyMismatch(f"{table}: source {expected} rows, copied {count}, target {actual}")
    # Summed per period: PostgreSQL spreads a team's total over several rows (ledger_team_totals_spread).
    query = (
        "SELECT team_id, scope, subject, period, CAST(sum(cost_nanos) AS BIGINT), CAST(sum(images) AS BIGINT),"
        " CAST(sum(audio_ms) AS BIGINT), CAST(sum(searches) AS BIGINT) FROM usage_totals"
        " GROUP BY team_id, scope, subject, period"
    )
    before = sorted(tuple(r) for r in await source.execute_fetchall(query))
    after = sorted(tuple(r) for r in await target.fetch(query))
    if before != after:
        raise CopyMismatch("usage totals rebuilt on the target differ from the source's")
    copied["usage_totals (checked)"] = len(after)
    ends = sorted(tuple(r) for r in await source.execute_fetchall(f"SELECT id, {TOTAL_OF_MESSAGES} FROM conversations"))
    totals = sorted(tuple(r) for r in await target.fetch("SELECT id, tokens_total FROM conversations"))
    if ends != totals:
        raise CopyMismatch("conversations' token totals on the target differ from where the source's conversations end")
    copied["conversation token totals (checked)"] = len(totals)
