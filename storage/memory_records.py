"""Records of semantic memory (message embeddings) that cross the Store boundary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

# messages.embed_state: waiting for the background embedder, embedded, or never to be embedded.
PENDING, EMBEDDED, SKIPPED = 0, 1, 2


@dataclass(frozen=True)
class PendingText:
    """A stored message waiting to be embedded, with who pays for it."""

    message_id: int
    content: str
    platform: str
    team_id: str
    channel_id: str


class MessageVector(NamedTuple):
    """A message's vector and the text it was made from: kept only while the message still says that."""

    message_id: int
    content: str
    vector: bytes  # unit-length float32 bytes


@dataclass(frozen=True)
class VectorScope:
    """Which stored vectors a scan reads: one team's (one model's), narrowed by the optional fields.

    `channels` None means every channel; an empty tuple means none. `before_message_id` keeps to
    messages older than that one (recall skips what is already in the window).
    """

    platform: str
    team_id: str
    model: str
    channels: Sequence[str] | None = None
    conversation_id: int | None = None
    before_message_id: int | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class VectorPage:
    """One page of a scan: message ids, and their vectors back to back in the same order (little-endian float32).

    The next page starts after the largest id.
    """

    ids: list[int]
    vectors: bytes


@dataclass(frozen=True)
class MemoryHit:
    """A message found by similarity, with what it takes to show and link it."""

    message_id: int
    conversation_id: int
    role: str
    content: str
    tokens: int
    author_name: str
    created_at: datetime
    channel_id: str
    thread_id: str
    platform_message_id: str
    score: float = 0.0
