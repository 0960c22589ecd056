"""The Store protocol: everything the engine asks of a database, and nothing it must not know."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from storage.assistant_threads import AssistantThreads
from storage.digests import Digests
from storage.ledger_records import (
    InFlightLease,
    LimitChange,
    LimitOverride,
    Metric,
    PeriodTotals,
    Recovered,
    Refusal,
    ReservationRequest,
    Settlement,
    Units,
    UsageRow,
)
from storage.memory_records import MemoryHit, MessageVector, PendingText, VectorPage, VectorScope
from storage.prompt_records import PromptRecord, PromptRun, PromptSummary, PromptVersion, VersionStats
from storage.records import (
    ChannelSettings,
    Conversation,
    ConversationKey,
    NewMessage,
    PlatformMessage,
    StoredImage,
    StoredMessage,
    TeamSeen,
    TurnLease,
    WindowMessage,
)
from storage.signins import SignIns
from storage.tool_servers import ToolServers
from storage.turn_records import OpenedTurn, TurnOpening


class StoreUnavailable(Exception):
    """The database cannot be opened or migrated; the message says which and why."""


class StoreFailed(Exception):
    """A read or write failed for a reason outside the bot: locked by another writer, disk full, I/O."""

    def __init__(self, message: str, *, busy: bool) -> None:
        super().__init__(message)
        self.busy = busy


class CopyMismatch(Exception):
    """A database copy's counts or totals differ from its source's (the copy was rolled back)."""


class ImportConflict(Exception):
    """An imported prompt or version differs from the stored one of the same name or number."""


class Ledger(Protocol):
    """The usage ledger: every model call's cost, reservations against limits, and the limits."""

    async def reserve(self, request: ReservationRequest) -> int | None:
        """Atomically insert a reservation unless any limit would be crossed: its id, or None."""

    async def reserve_or_totals(self, request: ReservationRequest) -> int | Refusal:
        """Like `reserve`; when refused, the limits and period totals the refusing decision saw."""

    async def settle(self, reservation_id: int, units: Units, cost_nanos: int, now: datetime) -> bool:
        """Record the real cost of a reserved call; False when its hold had been lost meanwhile."""

    async def settle_late(
        self, reservation_id: int, units: Units, cost_nanos: int, now: datetime
    ) -> PeriodTotals | None:
        """Record the real cost of a call whose hold was lost; the period totals after it."""

    async def renew(self, reservation_ids: Sequence[int], expires_at: datetime) -> list[int]:
        """Extend running calls' reservations; the ids of those still held."""

    async def release(self, reservation_id: int, now: datetime) -> bool:
        """Give a reservation back (the call failed, nothing was charged)."""

    async def release_expired(self, now: datetime) -> Recovered:
        """Recover reservations past their expiry: worst case (estimated) if sent, else released."""

    async def release_held_by(self, holders: Sequence[str], now: datetime) -> Recovered:
        """Recover reservations of the given (dead) holders: worst case (estimated) if sent, else released."""

    async def claim_in_flight(
        self, platform: str, team_id: str, user_id: str, holder: str, now: datetime, expires_at: datetime, limit: int
    ) -> int | None:
        """A lease for one message of a user unless they have `limit` live ones (any process): its id, or None."""

    async def renew_in_flight(self, lease_ids: Sequence[int], expires_at: datetime) -> None:
        """Keep messages' leases alive."""

    async def release_in_flight(self, lease_id: int) -> None:
        """Drop a message's lease."""

    async def forget_in_flight(self, now: datetime, dead_holders: Sequence[str]) -> int:
        """Drop expired leases and those of dead holders."""

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


class PromptLibrary(Protocol):
    """The team's versioned prompts, their runs and ratings."""

    async def save_version(
        self,
        team_id: str,
        name: str,
        template: str,
        *,
        system_prompt: str | None,
        model: str | None,
        temperature: float | None,
        author_id: str,
        now: datetime,
    ) -> PromptVersion:
        """Add the next version of `name` (creating the prompt at v1)."""

    async def version(self, team_id: str, name: str, number: int | None = None) -> PromptVersion | None:
        """Version `number` of a live prompt, or its latest."""

    async def versions(self, team_id: str, name: str) -> list[PromptVersion]:
        """Every version of a live prompt, oldest first."""

    async def summaries(self, team_id: str, contains: str | None = None) -> list[PromptSummary]:
        """The team's live prompts by name, optionally filtered."""

    async def creator(self, team_id: str, name: str) -> str | None:
        """Who created a live prompt."""

    async def delete(self, team_id: str, name: str, *, by: str, now: datetime) -> bool:
        """Mark a prompt deleted, keeping its versions and runs."""

    async def add_run(self, run: PromptRun) -> int:
        """Record one run; returns its id."""

    async def run(self, team_id: str, run_id: int) -> PromptRun | None:
        """One run of the team's."""

    async def rate(self, team_id: str, run_id: int, user_id: str, rating: int, comment: str, now: datetime) -> bool:
        """Rate a run (again replaces); False if the team has no such run."""

    async def stats(self, team_id: str, name: str) -> list[VersionStats]:
        """Per-version runs, average rating, cost and latency."""

    async def export(self, team_id: str | None) -> list[PromptRecord]:
        """Every prompt with versions, runs and ratings."""

    async def import_(self, records: Sequence[PromptRecord]) -> dict[str, int]:
        """Add what is missing, atomically; counts of what was added."""


class MemoryStore(Protocol):
    """Message embeddings: the background embedder's queue, and scans for recall and search."""

    async def claim_pending(self, limit: int, now: datetime, lease_until: datetime) -> list[PendingText]:
        """Up to `limit` messages waiting for a vector, claimed until `lease_until` (others skip them)."""

    async def save_vectors(self, model: str, vectors: Sequence[MessageVector]) -> None:
        """Store vectors and mark their messages embedded; a message edited since its text was read keeps waiting."""

    async def skip(self, message_ids: Sequence[int]) -> None:
        """Mark messages never to be embedded."""

    async def requeue_other_models(self, model: str) -> int:
        """Messages embedded with another model wait to be embedded again; returns how many."""

    async def embedding_size(self, model: str, requested: int | None) -> int | None:
        """The vector size the server returned for `model` asked for `requested` dimensions (None: none asked);
        None when never seen."""

    async def remember_embedding_size(self, model: str, requested: int | None, size: int, now: datetime) -> None:
        """Record the vector size the server returns for `model` asked for `requested`."""

    async def scan(self, scope: VectorScope, after_id: int, limit: int) -> VectorPage:
        """One page of a scope's vectors in message-id order after `after_id` (empty at the end)."""

    async def channels(self, platform: str, team_id: str, model: str) -> list[str]:
        """The team's channels that hold vectors of `model`."""

    async def hits(self, message_ids: Sequence[int]) -> list[MemoryHit]:
        """The messages behind `message_ids` that are still stored."""


class Store(Protocol):
    """Persistence for conversations, their messages, and the usage ledger."""

    @property
    def ledger(self) -> Ledger:
        """The usage ledger."""

    @property
    def prompts(self) -> PromptLibrary:
        """The team prompt library."""

    @property
    def memory(self) -> MemoryStore:
        """Message embeddings."""

    @property
    def signins(self) -> SignIns:
        """The dashboard's one-time links and sessions."""

    @property
    def tool_servers(self) -> ToolServers:
        """Which MCP servers each channel turned on, and the audit of their calls."""

    @property
    def digests(self) -> Digests:
        """The channels' digest schedules."""

    @property
    def assistant_threads(self) -> AssistantThreads:
        """The channel viewed beside each Slack assistant thread."""

    async def close(self) -> None:
        """Release the connection(s)."""

    def turn_lock(self, key: ConversationKey) -> AbstractAsyncContextManager[TurnLease | None]:
        """Held for a whole chat turn, so turns on one thread never interleave across processes: the lease
        (None where one process is the rule), which `add_reply` may release with the turn's last write."""

    async def teams(self) -> list[TeamSeen]:
        """Every team with a conversation or a model call (operators pick one by its id)."""

    async def has_open_conversation(self, key: ConversationKey) -> bool:
        """Whether a conversation is open at `key` (the bot has been talking in that thread)."""

    async def active_conversation(self, key: ConversationKey, now: datetime) -> Conversation:
        """The conversation currently open at `key`, started now if there is none."""

    async def channel_settings(self, platform: str, team_id: str, channel_id: str) -> ChannelSettings:
        """The channel's persona and model (all None when never set)."""

    async def set_channel_settings(
        self, platform: str, team_id: str, channel_id: str, settings: ChannelSettings, by: str, now: datetime
    ) -> None:
        """Replace the channel's persona and model."""

    async def end_conversation(self, key: ConversationKey, now: datetime) -> bool:
        """Close the open conversation at `key` (the next message starts a fresh one); False if none."""

    async def open_turn(self, opening: TurnOpening) -> OpenedTurn:
        """A chat turn's work before its model call, in one trip: the open conversation at `opening.key`
        (started if none), the question stored (`opening.question` decides it from the conversation; if it
        raises, nothing is stored), its window read, and the call reserved if `opening.reservation` asks
        (the ledger's one limit-checked write; `reserved` None when it was not made: `reserve_or_totals`
        then decides). Each write commits on its own: the question stays whatever follows. With
        `opening.eager`, a store may store that question with its read of the conversation: `opening.question`
        must then return that very message, without raising, for any conversation whose prompt its bound admits,
        and a window no wider than `eager.widest_window`."""

    async def add_message(self, conversation_id: int, message: NewMessage) -> StoredMessage:
        """Append one complete message, with its usage when it is a model reply."""

    async def add_reply(
        self,
        conversation_id: int,
        message: NewMessage,
        settlement: Settlement,
        lease: TurnLease | None = None,
        running: InFlightLease | None = None,
    ) -> tuple[StoredMessage, bool]:
        """Append a model's reply and settle its call in one transaction (releasing the turn's `lease` and the
        request's in-flight lease, `running`, in it);
        False when the call's hold had been lost (the reply is stored all the same: record its cost with
        `Ledger.settle_late`)."""

    async def window(self, conversation_id: int, budget_tokens: int) -> list[WindowMessage]:
        """The newest messages whose tokens add up to at most `budget_tokens`, oldest first.

        Costs O(messages returned), not O(history): see the `tokens_before` column.
        """

    async def message_images(self, message_ids: Sequence[int]) -> dict[int, list[StoredImage]]:
        """The images stored with these messages, by message id, in the order they were sent."""

    async def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The whole conversation, oldest first."""

    async def delete_platform_message(self, message: PlatformMessage) -> int:
        """A message deleted on its platform leaves history and memory, with the replies to it (and its channel's
        digest text waiting for a retry)."""

    async def edit_platform_message(self, message: PlatformMessage, author_id: str, text: str, tokens: int) -> int:
        """A message edited by its author: the stored text is replaced and embedded again (its channel's digest text
        waiting for a retry goes)."""

    async def forget_user(
        self, team_id: str, user_id: str, pseudonym: str, *, keep_day: str | None = None
    ) -> dict[str, int]:
        """Delete a user's messages, replies to them, prompt runs, ratings and dashboard sign-ins (and the team's digest
        texts waiting for a retry); pseudonymize the rest (the user's spend of `keep_day` keeps counting against their
        daily limits)."""

    async def claim_delivery(self, platform: str, delivery_id: str, now: datetime) -> bool:
        """True the first time a platform event id is seen, False for every redelivery."""

    async def forget_deliveries(self, before: datetime) -> int:
        """Drop delivery claims older than `before` (platforms stop redelivering within minutes)."""
