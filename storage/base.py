"""The Store protocol: everything the engine asks of a database, and nothing it must not know."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from storage.records import Conversation, ConversationKey, NewMessage, StoredMessage, WindowMessage


class StoreUnavailable(Exception):
    """The database cannot be opened or migrated; the message says which and why."""


class Store(Protocol):
    """Persistence for conversations and their messages. Each method is one transaction."""

    async def close(self) -> None:
        """Release the connection(s)."""

    async def active_conversation(self, key: ConversationKey, now: datetime) -> Conversation:
        """The conversation currently open at `key`, started now if there is none."""

    async def end_conversation(self, key: ConversationKey, now: datetime) -> bool:
        """Close the open conversation at `key` (the next message starts a fresh one); False if none."""

    async def add_message(self, conversation_id: int, message: NewMessage) -> StoredMessage:
        """Append one complete message, with its usage when it is a model reply."""

    async def window(self, conversation_id: int, budget_tokens: int) -> list[WindowMessage]:
        """The newest messages whose tokens add up to at most `budget_tokens`, oldest first.

        Costs O(messages returned), not O(history): see the `tokens_before` column.
        """

    async def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The whole conversation, oldest first."""
