"""Pick the Store implementation from DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

from storage.base import Store


def sqlite_path(url: str) -> Path | str:
    """The file of a sqlite:/// URL (relative to the working directory), or ':memory:'."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a SQLite URL: {url!r}")
    rest = url[len(prefix) :]
    if rest in ("", ":memory:"):
        return ":memory:"
    return Path(rest)


async def open_store(url: str, *, busy_timeout_ms: int = 5_000, keep_connections: bool = False) -> Store:
    """Open (and migrate) the store that `url` names; `busy_timeout_ms` is how long a write waits for a lock.
    `keep_connections`: a process that serves turns (PostgreSQL opens its pool's connections at once and keeps them;
    a one-off command opens them as it needs them)."""
    if url.startswith("sqlite:///"):
        from storage.sqlite import SQLiteStore

        return await SQLiteStore.open(sqlite_path(url), busy_timeout_ms)
    if url.startswith(("postgresql://", "postgres://")):
        from storage.postgres import PostgresStore

        return await PostgresStore.open(url, busy_timeout_ms=busy_timeout_ms, keep_connections=keep_connections)
    raise ValueError(
        f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]!r} (use sqlite:///path or postgresql://…)"
    )


async def copy_sqlite_to_postgres(source_url: str, target_url: str) -> dict[str, int]:
    """Copy a SQLite database into an empty PostgreSQL one and check every count (see storage/copy.py)."""
    from storage.copy import copy_sqlite_to_postgres as copy

    return await copy(source_url, target_url)
