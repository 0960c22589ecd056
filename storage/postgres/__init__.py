"""PostgreSQL: what differs from SQLite (DDL, the driver wrapper, locks, turn leases, queue claiming)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]


def __getattr__(name: str) -> Any:
    # Transitional, while flat modules of storage/ still import this package's parts.
    if name == "PostgresStore":
        from storage.postgres.store import PostgresStore

        return PostgresStore
    raise AttributeError(name)
