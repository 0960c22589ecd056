"""PostgreSQL: only what differs from SQLite (DDL, the driver wrapper, locks, turn leases, queue claiming)."""

from storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
