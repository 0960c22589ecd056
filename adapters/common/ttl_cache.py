"""A small in-process cache whose entries expire: what a platform said about a user or channel, for a while."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Entries older than `seconds` are gone. Unbounded: keys are a team's users and channels."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The fresh value at `key`, or None."""
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] >= self._seconds:
            return None
        return entry[1]

    def put(self, key: K, value: V) -> V:
        """Store `value` at `key` from now; returns it."""
        self._entries[key] = (time.monotonic(), value)
        return value
