"""Both Store backends for the contract tests: SQLite always; PostgreSQL when a server answers on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from storage import Store, open_store
from storage.sql.connection import Database

# TEST_POSTGRES_URL set but empty means "no PostgreSQL here": its tests are skipped (failed under CI).
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def postgres_reachable() -> str | None:
    """None when the server answers, else why not."""
    import asyncpg

    if not ADMIN_URL.strip():
        return "TEST_POSTGRES_URL is empty: no PostgreSQL"
    try:
        conn = await asyncpg.connect(ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"no PostgreSQL at {ADMIN_URL.split('@')[-1]} ({type(exc).__name__}); set TEST_POSTGRES_URL"
    await conn.close()
    return None


@asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of `kind`, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'contract.sqlite3'}"
        return
    import asyncpg

    reason = await postgres_reachable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    name = f"teambot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# How long a statement here waits for a lock. The contract tests check outcomes (500 reservations at once
# never overspend), not speed: one team's reservations queue on its ledger lock, up to a pool's worth of
# transactions from each store, so a wait is about (connections queued) x (one transaction). Measured on 2
# cores, 500 reservations from two stores: the longest advisory-lock wait was 66 ms idle and 806 ms at a load
# average of 6 (CPU spinners and database churn); a full test run beside another reached the old 2 s bound.
# A lock-order bug would still fail here (a deadlock is detected in 1 s; a wait that never ends times out).
LOCK_WAIT_MS = 30_000


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    """A store on `url`, closed afterwards."""
    store = await open_store(url, busy_timeout_ms=LOCK_WAIT_MS)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def raw_database(url: str) -> AsyncIterator[Database]:
    """The database at `url` as the storage layer reaches it (statements in PostgreSQL's spelling), with no Store
    on it and nothing migrated: for rows written as another release or another program would."""
    db: Database
    if url.startswith("sqlite:///"):
        from storage.sqlite.database import SQLiteDatabase

        db = await SQLiteDatabase.open(url.removeprefix("sqlite:///"))
    else:
        import asyncpg

        from storage.postgres.database import PostgresDatabase

        db = PostgresDatabase(await asyncpg.create_pool(url, min_size=1, max_size=2))
    try:
        yield db
    finally:
        await db.close()


@asynccontextmanager
async def schema_before(url: str, migration: str) -> AsyncIterator[Database]:
    """The empty database at `url` with the schema of the release before `migration` (every migration before it
    applied), to fill with that release's rows; opening a store on it afterwards migrates them forward."""
    from storage.postgres.migrations import MIGRATIONS as POSTGRES
    from storage.sql.migrations import apply_migrations
    from storage.sqlite.migrations import MIGRATIONS as SQLITE

    migrations = SQLITE if url.startswith("sqlite:///") else POSTGRES
    async with raw_database(url) as db:
        await apply_migrations(db, migrations[: [m.name for m in migrations].index(migration)])
        yield db


async def assert_totals_kept(url: str) -> None:
    """PostgreSQL's running token total of each conversation is where its last message ends (SQLite keeps none)."""
    if url.startswith("sqlite:///"):
        return
    import asyncpg

    from storage.postgres.turn_statements import TOTAL_OF_MESSAGES

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(f"SELECT id, tokens_total, {TOTAL_OF_MESSAGES} FROM conversations ORDER BY id")
    finally:
        await conn.close()
    assert [(r[0], r[1]) for r in rows] == [(r[0], r[2]) for r in rows]
