"""What opening a chat turn exchanges with the Store: the caller's decisions, made between its statements,
and what the store read and wrote. The store runs it all in one trip (see `Store.open_turn`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from storage.ledger_records import ReservationRequest
from storage.records import Conversation, ConversationKey, NewMessage, StoredImage, StoredMessage, WindowMessage


@dataclass(frozen=True)
class Question:
    """The question to store in a conversation, and how its window is read after it."""

    message: NewMessage
    window_tokens: int  # the window's budget: the newest messages that fit it, the question included
    images: bool = False  # whether the window's stored images are read too (a model that sees them)


@dataclass(frozen=True)
class EagerQuestion:
    """The question as it is stored in any conversation whose system prompt leaves it room: a store may write it
    with its read of the conversation (PostgreSQL: in the same statement) where that prompt surely does. `question`
    of the opening then returns this very message for that conversation.

    Room is judged without counting the prompt: its tokens are at most its UTF-8 bytes (a token is one byte or
    more), so a prompt of at most `prompt_bytes` bytes leaves room; a conversation on the default prompt (its
    `system_prompt` NULL) leaves room when `default_fits`. Any other conversation gets the question the usual way,
    after its read, so one too long is refused before anything is written, as always."""

    message: NewMessage
    prompt_bytes: int
    default_fits: bool
    widest_window: int  # tokens: no conversation's window for it is wider (a store may read that much with it)


@dataclass(frozen=True)
class TurnOpening:
    """Where and when a turn opens, and the caller's pure decisions between the store's statements.

    They may run on the database's own thread (SQLite), so they only compute: `question` from the
    conversation (raise to refuse the message: nothing more is written), `reservation` of the call from the
    window (None: the caller reserves later, e.g. after recalling older messages).
    """

    key: ConversationKey
    now: datetime
    question: Callable[[Conversation], Question]
    reservation: Callable[[Conversation, list[WindowMessage]], ReservationRequest | None]
    conversation: Conversation | None = None  # already read by the caller: not read again
    eager: EagerQuestion | None = None  # the question, if it may be written with the conversation's read


@dataclass(frozen=True)
class OpenedTurn:
    """What opening a turn read and wrote: the conversation, the stored question, its window (with the
    images of its messages when asked) and the call's reservation (None when not made: refused, or not asked)."""

    conversation: Conversation
    question: StoredMessage
    window: list[WindowMessage]
    reserved: int | None
    images: dict[int, list[StoredImage]] = field(default_factory=dict)
