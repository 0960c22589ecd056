"""Persistence behind the `Store` protocol: SQLite by default, PostgreSQL for several processes."""

from storage.base import CopyMismatch, ImportConflict, Ledger, Store, StoreFailed, StoreUnavailable
from storage.factory import copy_sqlite_to_postgres, open_store
from storage.records import (
    ChannelSettings,
    Conversation,
    ConversationKey,
    ModelUsage,
    NewMessage,
    PlatformMessage,
    StoredImage,
    StoredMessage,
    TeamSeen,
    WindowMessage,
)

__all__ = [
    "ChannelSettings",
    "Conversation",
    "ConversationKey",
    "CopyMismatch",
    "ImportConflict",
    "Ledger",
    "ModelUsage",
    "NewMessage",
    "PlatformMessage",
    "Store",
    "StoreFailed",
    "StoreUnavailable",
    "StoredImage",
    "StoredMessage",
    "TeamSeen",
    "WindowMessage",
    "copy_sqlite_to_postgres",
    "open_store",
]
