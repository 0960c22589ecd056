"""SQLite: what differs from PostgreSQL (DDL, the driver wrapper, queue claiming), nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]


def __getattr__(name: str) -> Any:
    # Transitional, while flat modules of storage/ still import this package's parts.
    if name == "SQLiteStore":
        from storage.sqlite.store import SQLiteStore

        return SQLiteStore
    raise AttributeError(name)
