"""What the PostgreSQL modules share: turning operational failures into StoreFailed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from storage.base import StoreFailed


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Lock timeouts and lost connections become StoreFailed; constraint errors stay bugs."""
    try:
        yield
    except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as exc:
        raise StoreFailed(f"PostgreSQL: {exc}", busy=True) from exc
    except (asyncpg.InterfaceError, asyncpg.DiskFullError, OSError) as exc:
        raise StoreFailed(f"PostgreSQL: {exc}", busy=False) from exc
