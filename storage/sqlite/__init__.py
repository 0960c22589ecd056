"""SQLite: only what differs from PostgreSQL (DDL, the driver wrapper, queue claiming)."""

from storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
