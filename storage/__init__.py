"""Persistence behind the `Store` protocol: SQLite by default, PostgreSQL for several processes."""

from storage.base import ImportConflict, Ledger, Store, StoreFailed, StoreUnavailable
from storage.factory import open_store
from storage.records import (
    ChannelSettings,
    Conversation,
    ConversationKey,
    ModelUsage,
    NewMessage,
    StoredMessage,
    TeamSeen,
    WindowMessage,
)

__all__ = [
    "ChannelSettings",
    "Conversation",
    "ConversationKey",
    "ImportConflict",
    "Ledger",
    "ModelUsage",
    "NewMessage",
    "Store",
    "StoreFailed",
    "StoreUnavailable",
    "StoredMessage",
    "TeamSeen",
    "WindowMessage",
    "open_store",
]
