"""Plain records that cross the Store boundary. No database types leak out of storage/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ConversationKey:
    """Where a conversation lives: (platform, team, channel, thread); the thread is the conversation."""

    platform: str
    team_id: str
    channel_id: str
    thread_id: str = ""


@dataclass(frozen=True)
class TeamSeen:
    """A team (Discord guild, Slack workspace, the console's "local") the database has seen, and how much."""

    platform: str
    team_id: str
    conversations: int
    calls: int  # model calls in the usage ledger (released reservations not counted)
    last_active: str  # ISO time of its latest conversation or call


@dataclass(frozen=True)
class Conversation:
    """One conversation: a thread from its first message until someone resets it."""

    id: int
    key: ConversationKey
    created_at: datetime
    system_prompt: str | None = None  # the channel's persona when the conversation started
    model: str | None = None  # the channel's model now (None: the default)
    reasoning_effort: str | None = None  # the channel's reasoning effort now (None: the model's own)


@dataclass(frozen=True)
class ModelUsage:
    """What the provider reported for one call."""

    model: str
    prompt_tokens: int
    completion_tokens: int  # a reasoning model's thinking included, as the API counts it
    cached_tokens: int = 0
    reasoning_tokens: int = 0  # of completion_tokens (completion_tokens_details.reasoning_tokens)


@dataclass(frozen=True)
class StoredImage:
    """An image a message showed the model: the bytes sent (already scaled), with its token count."""

    name: str
    media_type: str
    data: bytes = field(repr=False)
    width: int
    height: int
    detail: str
    tokens: int


@dataclass(frozen=True)
class NewMessage:
    """A message to store. `tokens` is what it costs in a prompt, framing included, counted once."""

    role: Role
    content: str
    tokens: int
    created_at: datetime
    author_id: str = ""
    author_name: str = ""
    platform_message_id: str = ""
    usage: ModelUsage | None = None
    reply_to: int | None = None  # a reply: the stored id of the question it answers
    images: tuple[StoredImage, ...] = ()  # stored with the message, so follow-ups still see them


@dataclass(frozen=True)
class StoredMessage:
    """A message as stored, in conversation order."""

    id: int
    conversation_id: int
    role: Role
    content: str
    tokens: int
    created_at: datetime
    author_id: str = ""
    author_name: str = ""
    usage: ModelUsage | None = None


class WindowMessage(NamedTuple):
    """A message in the context window: what a prompt needs, and where it sits (a tuple: windows can be long)."""

    role: Role
    content: str
    tokens: int
    id: int = 0
    tokens_before: int = 0  # the conversation's tokens before this message: > 0 on the first means some are left out
    images: int = 0  # how many images were stored with it (read them only then)


@dataclass(frozen=True)
class ChannelSettings:
    """A channel's persona (system prompt, and the prompt it came from) and model."""

    persona: str | None = None
    persona_source: str | None = None
    model: str | None = None
    reasoning_effort: str | None = None  # low, medium or high, for reasoning models (None: the model's default)


@dataclass(frozen=True)
class PlatformMessage:
    """A message as the platform names it, for its deletions and edits: an empty team or channel matches any
    (Discord's message ids are unique on their own; a raw DM event does not say whose DM it was)."""

    platform: str
    team_id: str
    channel_id: str
    message_id: str


@dataclass
class TurnLease:
    """A held turn lock of a store whose turns are leased across processes (PostgreSQL).

    `released` once its release went with the turn's last write (`Store.add_reply`), so leaving the
    lock has nothing more to do.
    """

    name: str
    token: str
    released: bool = False
