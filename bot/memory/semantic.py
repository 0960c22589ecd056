"""Semantic memory: messages embedded in the background, recalled into long conversations, searched.

Nothing waits for the background embedder: a turn embeds only its own question (bounded by
MEMORY_QUERY_TIMEOUT) and goes on without recall if that fails. Every embedding call is metered
like any model call: a turn's and a search's to the person asking, the background's to the team
(as the pseudo-user MEMORY_PAYER).

Vectors are read in pages and scored with numpy (imported on the first scoring: a bot that chats and embeds
without recalling or searching never loads it), so memory use stays flat however many are stored;
time grows with the vectors in scope (one conversation for recall, the team's visible channels
for search). benchmarks/memory_search.py measures where that stops being fast enough.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.billing.budget import Budget, QuotaExceeded, charge_for
from bot.billing.prices import PriceTable
from bot.clock import Clock
from bot.errors import (
    GatewayBudgetSpent,
    ModelAuthError,
    ModelError,
    ModelMisconfigured,
    ModelNotFound,
    ModelTimeout,
    ModelUnavailable,
    RateLimited,
    UserFacingError,
)
from bot.memory.embeddings import EmbeddingModel, Vector, similarities, to_bytes
from bot.messages import IncomingMessage
from bot.providers.tokens import TokenCounter
from bot.settings import Settings
from storage import Store, StoreFailed
from storage.ledger_records import Charge, Units
from storage.memory_records import MemoryHit, MessageVector, PendingText, VectorScope

log = logging.getLogger(__name__)

MEMORY_PAYER = "(memory)"  # the ledger's user for background embedding, charged to the team
MAX_TOKENS_EMBEDDED = 2_000  # of one message: its gist; well under the models' 8,191 in any encoding
CLAIM_LEASE = timedelta(minutes=5)  # a batch not saved by then (crash, outage) is claimed again
PAGE = 4_096  # vectors read per statement while scanning
IDLE_SECONDS = 5.0  # the background's nap when nothing is waiting (a new message wakes it)
FAILURE_BACKOFF = 30.0
PROBE_TEXT = "hello"  # embedded when a batch is refused, to tell a bad setting from a bad message


class Memory:
    """Embeds stored messages and finds the ones nearest to a text."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        model: EmbeddingModel,
        budget: Budget,
        prices: PriceTable,
        tokens: TokenCounter,
        clock: Clock,
    ) -> None:
        self.enabled = settings.memory_enabled
        self.off_reason = "" if self.enabled else "MEMORY_ENABLED=false"
        self._settings = settings
        self._store = store
        self._model = model
        self._budget = budget
        self._prices = prices
        self._tokens = tokens
        self._clock = clock
        self._name = settings.embedding_model
        dims = settings.embedding_dimensions
        # Vectors of another model or size cannot be compared: each is kept under its own key, which
        # records the size the server really returned. With EMBEDDING_DIMENSIONS empty (the model's own
        # size) it is learned from the first vectors after start.
        self.key: str | None = f"{self._name}@{dims}" if dims else None
        self._saved_key: str | None = None  # the key as the database remembers it (see `_recall_size`)
        self._requeued_for: str | None = None  # the key whose other-model vectors were queued again
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """A message was stored: wake the background embedder."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """The background embedder: embeds waiting messages in batches until `stop` is set."""
        if not self.enabled:
            return
        await self._recall_size()
        await self._requeue_other_models()
        while self.enabled and not stop.is_set():  # a missing embedding model turns it off
            try:
                handled = await self.embed_pending()
            except Exception:  # the embedder must outlive any one failure; chat never depends on it
                log.exception("background embedding failed; retrying in %.0f s", FAILURE_BACKOFF)
                handled, nap = 0, FAILURE_BACKOFF
            else:
                nap = IDLE_SECONDS
            if handled:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=nap, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def embed_pending(self) -> int:
        """Embed one batch of waiting messages (one call per team); returns how many were claimed."""
        now = self._clock()
        batch = await self._store.memory.claim_pending(self._settings.memory_batch_size, now, now + CLAIM_LEASE)
        teams: dict[tuple[str, str], list[PendingText]] = defaultdict(list)
        for item in batch:
            teams[(item.platform, item.team_id)].append(item)
        for (platform, team_id), items in teams.items():
            await self._embed_batch(platform, team_id, items)
        return len(batch)

    async def _recall_size(self) -> None:
        """The size the server returned before (on any start, in any process), so that the vectors it made keep
        their key: a server that ignores `dimensions` would otherwise have them all embedded, and paid for,
        again at every start, and /search find nothing until then."""
        if self._saved_key is not None:
            return
        dims = self._settings.embedding_dimensions
        try:
            size = await self._store.memory.embedding_size(self._name, dims)
        except StoreFailed:
            log.exception("could not read the embedding size learned earlier")
            return
        if size is None:
            return
        self.key = self._saved_key = f"{self._name}@{size}"
        if dims and size != dims:
            log.info(
                "%s returns %d-dimension vectors (learned earlier), not EMBEDDING_DIMENSIONS=%d: the server ignores"
                " it (set EMBEDDING_DIMENSIONS= for the model's own size)", self._name, size, dims,
            )  # fmt: skip

    async def _learned(self, vectors: Sequence[Vector]) -> str:
        """The key of these vectors (see `_key_for`), remembered in the database when it is new."""
        dims = len(vectors[0])
        key = self._key_for(dims)
        if key != self._saved_key:
            await self._store.memory.remember_embedding_size(
                self._name, self._settings.embedding_dimensions, dims, self._clock()
            )
            self._saved_key = key
        return key

    async def _requeue_other_models(self) -> None:
        """Once the server's size is known (from the database or its vectors, never from the setting alone: a
        server may ignore it): messages embedded with another model or size wait to be embedded again."""
        key = self._saved_key
        if key is None or self._requeued_for == key:
            return
        self._requeued_for = key
        try:
            requeued = await self._store.memory.requeue_other_models(key)
        except StoreFailed:
            log.exception("could not look for vectors of another embedding model")
        else:
            if requeued:
                log.info("%d message(s) embedded with another model will be embedded again with %s", requeued, key)

    async def _embed_batch(self, platform: str, team_id: str, items: list[PendingText]) -> None:
        blank = [item.message_id for item in items if not item.content.strip()]
        await self._store.memory.skip(blank)
        items = [item for item in items if item.content.strip()]
        if items:
            await self._embed_or_isolate(Charge(platform, team_id, MEMORY_PAYER, "", "embedding", self._name), items)
            await self._requeue_other_models()

    async def _embed_or_isolate(self, charge: Charge, items: list[PendingText], *, probed: bool = False) -> None:
        """Embed and save `items`; a refused batch is halved until the messages the model refuses are found."""
        try:
            vectors = await self._embed(charge, [item.content for item in items])
        except (ModelNotFound, ModelMisconfigured, ModelAuthError) as exc:
            self._turn_off(exc)  # a setting is wrong: every call would fail; the messages stay pending
            return
        except (RateLimited, ModelUnavailable, ModelTimeout, GatewayBudgetSpent, QuotaExceeded) as exc:
            # Transient, or a budget is spent: the claim lapses and the batch is tried again. A gateway's
            # spent budget is logged once an hour where it is recognised (bot/providers/errors.py).
            (log.debug if isinstance(exc, GatewayBudgetSpent) else log.warning)(
                "embedding %d message(s) of team %s postponed: %s", len(items), charge.team_id, exc.message
            )
            return
        except ModelError as exc:
            # Refused (a content policy, or a 400 we cannot read): the messages, or the setup?
            if not probed:
                works = await self._setup_works(charge)
                if works is None:
                    return  # the probe met a transient failure: try the batch again later
                if not works:
                    self._turn_off(exc)
                    return
            if len(items) == 1:
                log.warning("the embedding model refused message %d, skipped: %s", items[0].message_id, exc.message)
                await self._store.memory.skip([items[0].message_id])
                return
            half = len(items) // 2
            await self._embed_or_isolate(charge, items[:half], probed=True)
            if self.enabled:
                await self._embed_or_isolate(charge, items[half:], probed=True)
            return
        await self._store.memory.save_vectors(
            await self._learned(vectors),
            [
                MessageVector(item.message_id, item.content, to_bytes(vector))
                for item, vector in zip(items, vectors, strict=True)
            ],
        )

    async def _setup_works(self, charge: Charge) -> bool | None:
        """Whether the embedding model takes a harmless text (None: it could not be told just now)."""
        try:
            vectors = await self._embed(charge, [PROBE_TEXT])
        except (RateLimited, ModelUnavailable, ModelTimeout, GatewayBudgetSpent, QuotaExceeded):
            return None
        except ModelError:
            return False
        await self._learned(vectors)
        return True

    def _turn_off(self, exc: ModelError) -> None:
        """Memory off until restart, said once, naming the setting; nothing is skipped, so messages stay pending."""
        if not self.enabled:
            return
        self.enabled = False
        if isinstance(exc, ModelNotFound):
            self.off_reason = f"this model server has no embedding model {self._name!r}; see EMBEDDING_MODEL"
            fix = "set EMBEDDING_MODEL to an embedding model it serves"
        elif isinstance(exc, ModelMisconfigured) and exc.parameter == "dimensions":
            dims = self._settings.embedding_dimensions
            self.off_reason = f"the embedding model {self._name!r} does not take EMBEDDING_DIMENSIONS={dims}"
            fix = "set EMBEDDING_DIMENSIONS= (empty) for the model's own size"
        elif isinstance(exc, ModelAuthError):
            self.off_reason = "the model server refused the bot's key for embeddings; see OPENAI_API_KEY"
            fix = "check OPENAI_API_KEY (and the key's access to EMBEDDING_MODEL)"
        else:
            self.off_reason = f"the embedding model {self._name!r} refuses every request; see EMBEDDING_MODEL"
            fix = "check EMBEDDING_MODEL and EMBEDDING_DIMENSIONS against what the server serves"
        log.error(
            "memory (recall, /search) is off until restart: %s (%s). To fix: %s, or set MEMORY_ENABLED=false."
            " Messages stay queued and are embedded once it works.",
            self.off_reason, exc.admin_detail or exc.message, fix,
        )  # fmt: skip

    def _key_for(self, dims: int) -> str:
        """The key of vectors of this size, learned from the first ones and checked on every later batch."""
        key = f"{self._name}@{dims}"
        if key != self.key:
            if self.key is not None:
                log.warning(
                    "the server returned %d-dimension vectors for %s although EMBEDDING_DIMENSIONS=%s;"
                    " they are stored as %s (set EMBEDDING_DIMENSIONS= for the model's own size)",
                    dims, self._name, self._settings.embedding_dimensions, key,
                )  # fmt: skip
            self.key = key
        return key

    async def _embed(self, charge: Charge, texts: Sequence[str]) -> list[Vector]:
        """Embed `texts` under a reservation of their worst-case price, settled to the billed tokens."""
        clipped = [self._tokens.clip(text, MAX_TOKENS_EMBEDDED) for text in texts]
        # Counted with the chat model's encoding; the embedding model's may take up to twice as many.
        worst = 2 * sum(self._tokens.count(text) for text in clipped) + len(clipped)
        price = self._prices.embedding_cost
        async with self._budget.metered(charge, Units(input_tokens=worst), price(self._name, worst)) as reservation:
            result = await self._model.embed(clipped, model=self._name, dimensions=self._settings.embedding_dimensions)
            await reservation.settle(Units(input_tokens=result.tokens), price(self._name, result.tokens))
        return result.vectors

    async def embed_question(self, message: IncomingMessage, text: str) -> Vector:
        """The vector of one text, charged to the person asking."""
        return (await self._embed(charge_for(message, "embedding", self._name), [text]))[0]

    async def recall(
        self, message: IncomingMessage, message_id: int, conversation_id: int, before_id: int, budget_tokens: int
    ) -> list[MemoryHit]:
        """Older messages of the conversation most like `message` (stored as `message_id`), within the budget.

        Never raises: memory is a help, and a turn goes on without it.
        """
        if not self.enabled or budget_tokens <= 0 or self._settings.memory_recall_messages == 0:
            return []
        try:
            query = await asyncio.wait_for(
                self.embed_question(message, message.text), self._settings.memory_query_timeout
            )
            # The question's vector is the message's own: the background need not embed it again.
            key = await self._learned([query])
            await self._store.memory.save_vectors(key, [MessageVector(message_id, message.text, to_bytes(query))])
            scope = VectorScope(
                message.platform,
                message.team_id,
                key,
                conversation_id=conversation_id,
                before_message_id=before_id,
            )
            wanted = self._settings.memory_recall_messages
            best = [
                h for h in await self.nearest(scope, query, wanted) if h.score >= self._settings.memory_min_similarity
            ]
        except (TimeoutError, UserFacingError, StoreFailed) as exc:
            log.warning("recall skipped for %s message %s: %s", message.platform, message.message_id,
                        getattr(exc, "message", None) or type(exc).__name__)  # fmt: skip
            return []
        except Exception:  # a bug here must not cost the user their answer
            log.exception("recall failed for %s message %s", message.platform, message.message_id)
            return []
        chosen, used = [], 0
        for found in best:  # most similar first, while they fit
            if used + found.tokens <= budget_tokens:
                chosen.append(found)
                used += found.tokens
        return sorted(chosen, key=lambda h: h.message_id)

    async def search(
        self, message: IncomingMessage, query: str, *, channel: str | None, since: datetime | None, limit: int
    ) -> list[MemoryHit]:
        """The team's `limit` messages most like `query` (at least SEARCH_MIN_SIMILARITY) that the asker may
        read (in `channel` only, when given).

        Visibility is the platform's rule, asked through the message's directory: channels first, then each
        thread (a visible channel may hold threads closed to the asker, e.g. Discord private threads), so more
        are fetched than are shown.
        """
        channels = await self.searchable_channels(message, only=channel)
        if not channels:
            return []
        vector = await self.embed_question(message, query)
        key = await self._learned([vector])
        scope = VectorScope(message.platform, message.team_id, key, channels=channels, since=since)
        floor = self._settings.search_min_similarity
        found = [hit for hit in await self.nearest(scope, vector, limit * 3) if hit.score >= floor]
        directory = message.directory
        return [h for h in found if await directory.can_read_thread(h.channel_id, h.thread_id)][:limit]

    async def searchable_channels(self, message: IncomingMessage, *, only: str | None = None) -> list[str]:
        """The team's channels that hold anything searchable and that the asker may read (just `only`, if given)."""
        await self._recall_size()
        if self._saved_key is None:  # the size the server returns is not known yet: one tiny embedding tells it
            await self._learned(await self._embed(charge_for(message, "embedding", self._name), [PROBE_TEXT]))
        assert self.key is not None
        stored = await self._store.memory.channels(message.platform, message.team_id, self.key)
        candidates = [c for c in stored if only is None or c == only]
        return sorted(await message.directory.visible_channels(candidates)) if candidates else []

    async def nearest(self, scope: VectorScope, query: Vector, limit: int) -> list[MemoryHit]:
        """The `limit` stored messages in `scope` most similar to `query`, most similar first."""
        import numpy as np  # here, on the first scoring (see the module's docstring)

        best_ids = np.empty(0, dtype=np.int64)
        best_scores = np.empty(0, dtype=np.float32)
        after = 0
        while True:
            page = await self._store.memory.scan(scope, after, PAGE)
            if not page.ids:
                break
            ids = np.asarray(page.ids, dtype=np.int64)
            scores = similarities(query, page.vectors)
            best_ids = np.concatenate([best_ids, ids])
            best_scores = np.concatenate([best_scores, scores])
            if len(best_scores) > limit:
                keep = np.argpartition(-best_scores, limit)[:limit]
                best_ids, best_scores = best_ids[keep], best_scores[keep]
            after = int(ids.max())
            if len(page.ids) < PAGE:
                break
        score_of = dict(zip(best_ids.tolist(), best_scores.tolist(), strict=True))
        hits = await self._store.memory.hits(list(score_of))
        ranked = [_with_score(h, score_of[h.message_id]) for h in hits]
        return sorted(ranked, key=lambda h: -h.score)


def _with_score(found: MemoryHit, score: float) -> MemoryHit:
    return replace(found, score=score)
