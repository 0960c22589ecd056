"""The Store protocol: everything the engine asks of a database, and nothing it must not know."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from storage.ledger_records import (
    LimitChange,
    LimitOverride,
    Metric,
    PeriodTotals,
    ReservationRequest,
    Units,
    UsageRow,
)
from storage.records import Conversation, ConversationKey, NewMessage, StoredMessage, WindowMessage


class StoreUnavailable(Exception):
    """The database cannot be opened or migrated; the message says which and why."""


class Ledger(Protocol):
    """The usage ledger: every model call's cost, reservations against limits, and the limits."""

    async def reserve(self, request: ReservationRequest) -> int | None:
        """Atomically insert a reservation unless any limit would be crossed: its id, or None."""

    async def settle(self, reservation_id: int, units: Units, cost_nanos: int, now: datetime) -> bool:
        """Record the real cost of a reserved call."""

    async def release(self, reservation_id: int, now: datetime) -> bool:
        """Give a reservation back (the call failed, nothing was charged)."""

    async def release_expired(self, now: datetime) -> int:
        """Release reservations past their expiry; returns how many."""

    async def release_held_by(self, holders: Sequence[str], now: datetime) -> int:
        """Release reservations held by the given (dead) holders; returns how many."""

    async def reservation_holders(self) -> list[str]:
        """Holders of open reservations."""

    async def totals(self, team_id: str, user_id: str, user_day: str, team_month: str) -> PeriodTotals:
        """Spend so far in the user's day and the team's month."""

    async def limit_overrides(self, team_id: str, user_id: str | None = None) -> list[LimitOverride]:
        """Admin-set limits of a team (those bearing on `user_id` when given)."""

    async def set_limit(
        self, team_id: str, subject: str, metric: Metric, value: int | None, *, changed_by: str, now: datetime
    ) -> LimitOverride | None:
        """Set a limit (None = unlimited), recording the change; returns the previous override."""

    async def clear_limits(self, team_id: str, subject: str, *, changed_by: str, now: datetime) -> int:
        """Drop a subject's overrides (back to defaults), recording the changes."""

    async def limit_changes(self, team_id: str, limit: int = 20) -> list[LimitChange]:
        """The latest recorded limit changes, newest first."""

    async def usage(
        self, team_id: str | None, since_day: str, until_day: str | None = None, user_id: str | None = None
    ) -> list[UsageRow]:
        """Spend grouped by user, kind and quota day."""

    async def ledger_rows(self, team_id: str) -> list[tuple[str, str, int, str]]:
        """(kind, model, cost_nanos, state) of every row of a team, oldest first."""


class Store(Protocol):
    """Persistence for conversations, their messages, and the usage ledger."""

    @property
    def ledger(self) -> Ledger:
        """The usage ledger."""

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

    async def claim_delivery(self, platform: str, delivery_id: str, now: datetime) -> bool:
        """True the first time a platform event id is seen, False for every redelivery."""

    async def forget_deliveries(self, before: datetime) -> int:
        """Drop delivery claims older than `before` (platforms stop redelivering within minutes)."""
