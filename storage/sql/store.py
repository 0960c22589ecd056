"""The Store for both databases: conversations, messages, channel settings, /forget and event claims.

Subclasses add only what differs: how to open, the turn lock (`turn_lock`, part of the Store protocol)
and the memory queue (storage/sqlite/ and storage/postgres/).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, NamedTuple

from storage.base import Ledger
from storage.ledger_records import InFlightLease, Settlement
from storage.memory_records import PENDING
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
    TurnLease,
    WindowMessage,
)
from storage.sql.assistant_threads import FORGET_ASSISTANT_THREADS, SQLAssistantThreads
from storage.sql.connection import Connection, Database, Row, Script, Serialize, Statement, conversation_lock
from storage.sql.digests import DROP_UNPOSTED, FORGET_UNPOSTED, SQLDigests
from storage.sql.ledger import SETTLE, SQLLedger, settle_params
from storage.sql.memory import SQLMemory
from storage.sql.prompts import SQLPromptLibrary
from storage.sql.signins import END_SIGNINS, SQLSignIns
from storage.sql.tool_servers import FORGET_CALLS, FORGET_ENABLED_BY, SQLToolServers
from storage.turn_records import OpenedTurn, TurnOpening


def open_conversation(*more: str) -> str:
    """OPEN_CONVERSATION, with `more` columns of the conversation `c` after its own."""
    return (
        f"SELECT {', '.join(('c.id, c.created_at, c.system_prompt, s.model, s.reasoning_effort', *more))}"
        " FROM conversations c LEFT JOIN channel_settings s"
        " ON s.platform = c.platform AND s.team_id = c.team_id AND s.channel_id = c.channel_id"
        " WHERE c.platform = $1 AND c.team_id = $2 AND c.channel_id = $3 AND c.thread_id = $4 AND c.ended_at IS NULL"
    )


OPEN_CONVERSATION = open_conversation()
# ON CONFLICT on the partial unique index: two processes starting the same thread agree on one. The new row comes
# back as OPEN_CONVERSATION reads it (no row: another process started it first).
_CHANNEL = "FROM channel_settings WHERE platform = $1 AND team_id = $2 AND channel_id = $3"
START_CONVERSATION = (
    "INSERT INTO conversations (platform, team_id, channel_id, thread_id, created_at, system_prompt)"
    f" VALUES ($1, $2, $3, $4, $5, (SELECT persona {_CHANNEL}))"
    " ON CONFLICT (platform, team_id, channel_id, thread_id) WHERE ended_at IS NULL DO NOTHING"
    f" RETURNING id, created_at, system_prompt, (SELECT model {_CHANNEL}), (SELECT reasoning_effort {_CHANNEL})"
)
CHANNEL_SETTINGS = (
    "SELECT persona, persona_source, model, reasoning_effort FROM channel_settings WHERE platform = $1 AND team_id = $2"
    " AND channel_id = $3"
)
SET_CHANNEL_SETTINGS = (
    "INSERT INTO channel_settings (platform, team_id, channel_id, persona, persona_source, model,"
    " updated_by, updated_at, reasoning_effort) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (platform, team_id, channel_id) DO UPDATE SET persona = excluded.persona,"
    " persona_source = excluded.persona_source, model = excluded.model,"
    " reasoning_effort = excluded.reasoning_effort, updated_by = excluded.updated_by, updated_at = excluded.updated_at"
)
END_CONVERSATION = (
    "UPDATE conversations SET ended_at = $1 WHERE platform = $2 AND team_id = $3 AND channel_id = $4"
    " AND thread_id = $5 AND ended_at IS NULL RETURNING id"
)


def last_end(conversation: str) -> str:
    """Where the conversation `conversation` (a parameter or a column) ends: its last message's running total
    with its own tokens, the total the next message starts from (NULL: no message)."""
    return (
        f"(SELECT tokens_before + tokens FROM messages WHERE conversation_id = {conversation}"
        " ORDER BY tokens_before DESC, id DESC LIMIT 1)"
    )


def message_insert(tokens_before: str, source: str = "") -> str:
    """A message stored (ADD_MESSAGE's parameters; RETURNING its id) at the running total `tokens_before`, an
    expression over `source` (a FROM clause; none: the parameters alone)."""
    return (
        "INSERT INTO messages (conversation_id, role, content, tokens, tokens_before, author_id, author_name,"
        " platform_message_id, model, prompt_tokens, completion_tokens, created_at, reply_to, images)"
        f" SELECT $1, $2, $3, $4, {tokens_before}, $5, $6, $7, $8, $9, $10, $11, $12, $13{source} RETURNING id"
    )


# tokens_before: the running total of the conversation's tokens, fixed at insert (see `window`). PostgreSQL reads
# it from the conversation's row instead (storage/postgres/turn_statements.py).
ADD_MESSAGE = message_insert(f"COALESCE({last_end('$1')}, 0)")
ADD_IMAGE = (
    "INSERT INTO message_images (message_id, position, name, media_type, data, width, height, detail, tokens)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
MESSAGE_IMAGES = (
    "SELECT message_id, name, media_type, data, width, height, detail, tokens FROM message_images"
    " WHERE message_id IN (LIST($1 AS bigint)) ORDER BY message_id, position"
)
WINDOW = (
    "SELECT role, content, tokens, id, tokens_before, images FROM messages WHERE conversation_id = $1"
    f" AND tokens_before >= {last_end('$1')} - $2 ORDER BY tokens_before, id"
)
MESSAGES = (
    "SELECT id, conversation_id, role, content, tokens, created_at, author_id, author_name, model, prompt_tokens,"
    " completion_tokens FROM messages WHERE conversation_id = $1 ORDER BY tokens_before, id"
)
CLAIM_DELIVERY = (
    "INSERT INTO deliveries (platform, delivery_id, claimed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1"
)
FORGET_DELIVERIES = "DELETE FROM deliveries WHERE claimed_at < $1"

# /forget: $1 the team, $2 the user, $3 the pseudonym.
_MINE_FROM = (
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    " WHERE c.team_id = $1 AND m.role = 'user' AND m.author_id = $2"
)
_MINE = f"SELECT m.id{_MINE_FROM}"
MY_CONVERSATIONS = f"SELECT m.conversation_id{_MINE_FROM}"  # the replies to them are in the same ones
_RUNS = "SELECT id FROM prompt_runs WHERE team_id = $1 AND user_id = $2"
# The replies linked to the asker's messages (never a reply inferred from message order), then the messages;
# their vectors go with them (message_vectors cascades). Replies first: a reply cascading away with its
# question would be missing from the count (SQLite runs the cascade before RETURNING sees the row).
FORGET_REPLIES = f"DELETE FROM messages WHERE reply_to IN ({_MINE}) RETURNING 1"
FORGET_MESSAGES = f"DELETE FROM messages WHERE id IN ({_MINE}) RETURNING 1"
FORGET_RATINGS = (
    "DELETE FROM prompt_ratings WHERE user_id = $2 AND run_id IN (SELECT id FROM prompt_runs WHERE team_id = $1)"
    " RETURNING 1"
)
FORGET_RATINGS_OF_RUNS = f"DELETE FROM prompt_ratings WHERE run_id IN ({_RUNS})"
FORGET_RUNS = f"DELETE FROM prompt_runs WHERE id IN ({_RUNS}) RETURNING 1"
# The ledger keeps every cost under the pseudonym, except a call still running (it moves on a later
# /forget). The user's totals of the day in force ($4; NULL: none) stay under their id, so what they
# spent keeps counting against today's limit; the pseudonym gets its own total of that day, so each
# subject's totals keep matching its ledger rows as the triggers maintain them.
FORGET_LEDGER_ROWS = "UPDATE usage_ledger SET user_id = $3 WHERE team_id = $1 AND user_id = $2 AND state != 'reserved'"
FORGET_LEDGER_TOTALS = (
    "UPDATE usage_totals SET subject = $3 WHERE team_id = $1 AND scope = 'user' AND subject = $2"
    " AND (CAST($4 AS TEXT) IS NULL OR period != $4)"
)
FORGET_LEDGER_TODAY = (
    "INSERT INTO usage_totals (team_id, scope, subject, period, cost_nanos, images, audio_ms, searches)"
    " SELECT team_id, 'user', user_id, user_day, sum(cost_nanos), sum(images), sum(audio_ms), sum(searches)"
    " FROM usage_ledger"
    " WHERE team_id = $1 AND user_id = $2 AND user_day = $3 GROUP BY team_id, user_id, user_day"
)
PSEUDONYMIZE = (
    "UPDATE prompts SET created_by = $3 WHERE team_id = $1 AND created_by = $2",
    "UPDATE prompt_versions SET author_id = $3 WHERE author_id = $2"
    " AND prompt_id IN (SELECT id FROM prompts WHERE team_id = $1)",
    "UPDATE quota_changes SET changed_by = $3 WHERE team_id = $1 AND changed_by = $2",
    FORGET_ENABLED_BY,
    FORGET_CALLS,
    "UPDATE channel_digests SET set_by = $3 WHERE team_id = $1 AND set_by = $2",  # the digest stays the channel's
)


# A person's message as the platform names it: $1 platform, $2 team ('' = any), $3 channel ('' = any), $4 its id.
_PLATFORM_FROM = (
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    " WHERE m.platform_message_id = $4 AND m.role = 'user' AND c.platform = $1"
    " AND ($2 = '' OR c.team_id = $2) AND ($3 = '' OR c.channel_id = $3)"
)
_PLATFORM_MESSAGE = f"SELECT m.id{_PLATFORM_FROM}"
PLATFORM_CONVERSATIONS = f"SELECT m.conversation_id{_PLATFORM_FROM}"
# Deleted on the platform: the replies to it, then the message, and their vectors leave history and memory.
DELETE_PLATFORM_REPLIES = f"DELETE FROM messages WHERE reply_to IN ({_PLATFORM_MESSAGE}) RETURNING 1"
DELETE_PLATFORM_MESSAGE = f"DELETE FROM messages WHERE id IN ({_PLATFORM_MESSAGE}) RETURNING 1"
# Edited on the platform, by its author ($5): which stored messages to replace.
EDITED_MESSAGES = (
    f"SELECT m.id, m.conversation_id FROM messages m WHERE m.id IN ({_PLATFORM_MESSAGE}) AND m.author_id = $5"
)
# Its size and running total, read under its conversation's lock: an edit of an earlier message may have just moved it.
MESSAGE_SIZE = "SELECT tokens, tokens_before FROM messages WHERE id = $1"
# The new text waits to be embedded again; the old vector goes now (a search must not find the old text).
REPLACE_TEXT = (
    f"UPDATE messages SET content = $2, tokens = $3, embed_state = {PENDING}, embed_claimed_until = NULL WHERE id = $1"
)
DROP_VECTOR = "DELETE FROM message_vectors WHERE message_id = $1"
# The running token totals after an edited message move by its change in size ($2), so windows stay exact.
SHIFT_TOTALS = (
    "UPDATE messages SET tokens_before = tokens_before + $2 WHERE conversation_id = $1"
    " AND (tokens_before > $3 OR (tokens_before = $3 AND id > $4))"
)

# Every team the database has seen: in its conversations or in the ledger (memory's calls, /image
# and /transcribe have no conversation).
TEAMS = (
    "SELECT platform, team_id, sum(conversations), sum(calls), max(last_active) FROM ("
    " SELECT platform, team_id, count(*) AS conversations, 0 AS calls, max(created_at) AS last_active"
    " FROM conversations GROUP BY platform, team_id"
    " UNION ALL SELECT platform, team_id, 0, count(*), max(created_at) FROM usage_ledger"
    " WHERE state != 'released' GROUP BY platform, team_id"
    ") AS seen GROUP BY platform, team_id ORDER BY platform, team_id"
)


class SQLStore:
    """A Store on a Database. Safe for many coroutines; several processes may share the database."""

    # How a message is stored (ADD_MESSAGE's parameters; RETURNING its id), exact on its own: SQLite's statement takes
    # the write lock before it reads the messages before it; PostgreSQL's moves the conversation's running total.
    MESSAGE_INSERT: ClassVar[str] = ADD_MESSAGE

    def __init__(self, db: Database, memory: SQLMemory, ledger: SQLLedger) -> None:
        self._db = db
        self._ledger = ledger
        self._prompts = SQLPromptLibrary(db)
        self._memory = memory
        self._signins = SQLSignIns(db)
        self._tool_servers = SQLToolServers(db)
        self._digests = SQLDigests(db)
        self._assistant_threads = SQLAssistantThreads(db)

    @property
    def ledger(self) -> Ledger:
        """The usage ledger, on the same database."""
        return self._ledger

    @property
    def prompts(self) -> SQLPromptLibrary:
        """The team prompt library, on the same database."""
        return self._prompts

    @property
    def memory(self) -> SQLMemory:
        """Message embeddings, on the same database."""
        return self._memory

    @property
    def signins(self) -> SQLSignIns:
        """The dashboard's links and sessions, on the same database (shared by every worker)."""
        return self._signins

    @property
    def tool_servers(self) -> SQLToolServers:
        """Which MCP servers each channel turned on, and the audit of their calls, on the same database."""
        return self._tool_servers

    @property
    def digests(self) -> SQLDigests:
        """The channels' digest schedules, on the same database (claimed once across processes)."""
        return self._digests

    @property
    def assistant_threads(self) -> SQLAssistantThreads:
        """The channel viewed beside each Slack assistant thread, on the same database (shared by every worker)."""
        return self._assistant_threads

    async def close(self) -> None:
        """Close the connection or pool."""
        await self._db.close()

    async def teams(self) -> list[TeamSeen]:
        """Every team with a conversation or a model call, by platform and id."""
        rows = await self._db.fetch(TEAMS)
        return [TeamSeen(r[0], r[1], int(r[2]), int(r[3]), str(r[4])) for r in rows]

    async def has_open_conversation(self, key: ConversationKey) -> bool:
        """Whether a conversation is open at `key`."""
        return await self._db.fetchrow(OPEN_CONVERSATION, *key_params(key)) is not None

    async def active_conversation(self, key: ConversationKey, now: datetime) -> Conversation:
        """The open conversation at `key`, started now (with the channel's persona) if there is none."""
        return await self._db.run(_active_conversation(key, now))

    async def open_turn(self, opening: TurnOpening) -> OpenedTurn:
        """A chat turn's work before its model call, in one trip (SQLite) or on one connection (PostgreSQL):
        the open conversation (started if none), the question stored, its window read, the call reserved.

        Each write is its own transaction, as when run one by one: the question stays stored whatever
        follows (a user's message is never lost), and the reservation is the ledger's one limit-checked
        write (`Ledger.reserve_or_totals`' fast path; None when it was not made). (On SQLite, openings queued
        together share one transaction, committed before any of them returns: storage/sqlite/group_commit.py.)
        """

        async def give_back(opened: OpenedTurn) -> None:
            """The caller was cancelled while the trip ran on: the reservation it wrote, marked sent, would stay
            held and be charged its worst case at expiry for a call never made."""
            if opened.reserved is not None:
                await self._ledger.release(opened.reserved, opening.now)

        return await self._db.run(self._open_turn(opening), abandoned=give_back)

    def _open_turn(self, opening: TurnOpening) -> Script[OpenedTurn]:
        read = ConversationRead(opening.conversation) if opening.conversation is not None else None
        if read is None:
            read = yield from self._open_conversation(opening)
        conversation = read.conversation
        question = opening.question(conversation)
        if read.question is None:
            stored = yield from self._add_message(conversation.id, question.message)
            window = yield from self._window_to(conversation.id, stored, question.window_tokens)
        elif opening.eager is None or question.message is not opening.eager.message:
            raise AssertionError("the question was stored with the conversation's read, but the opening asks another")
        elif question.window_tokens > opening.eager.widest_window:
            raise AssertionError("the question's window is wider than the widest its eager offer allowed")
        else:
            stored, window = read.question, window_ending(read.widest, question.window_tokens)
        images: dict[int, list[StoredImage]] = {}
        with_images = [m.id for m in window if m.images] if question.images else []
        if with_images:
            images = _images((yield (MESSAGE_IMAGES, (with_images,))))
        request = opening.reservation(conversation, window)
        reserved = None if request is None else (yield from self._ledger.reserve_script(request))
        return OpenedTurn(conversation, stored, window, reserved, images)

    def _open_conversation(self, opening: TurnOpening) -> Script[ConversationRead]:
        """The open conversation at the opening's key (started if none); and the question with its window, when
        stored with the read (here never: SQLite's one trip to its thread runs the statements together already)."""
        return ConversationRead((yield from _active_conversation(opening.key, opening.now)))

    def _window_to(
        self, conversation_id: int, question: StoredMessage, window_tokens: int
    ) -> Script[list[WindowMessage]]:
        """The window of `window_tokens` that ends at the question just stored."""
        return (yield from _window(conversation_id, window_tokens))

    async def channel_settings(self, platform: str, team_id: str, channel_id: str) -> ChannelSettings:
        """The channel's persona and model (all None when never set)."""
        row = await self._db.fetchrow(CHANNEL_SETTINGS, platform, team_id, channel_id)
        return ChannelSettings(row[0], row[1], row[2], row[3]) if row else ChannelSettings()

    async def set_channel_settings(
        self, platform: str, team_id: str, channel_id: str, settings: ChannelSettings, by: str, now: datetime
    ) -> None:
        """Replace the channel's persona and model."""
        await self._db.execute(
            SET_CHANNEL_SETTINGS,
            platform, team_id, channel_id, settings.persona, settings.persona_source, settings.model, by,
            now.isoformat(), settings.reasoning_effort,
        )  # fmt: skip

    async def end_conversation(self, key: ConversationKey, now: datetime) -> bool:
        """Close the open conversation at `key`; False if there was none."""
        return await self._db.fetchrow(END_CONVERSATION, now.isoformat(), *key_params(key)) is not None

    async def add_message(self, conversation_id: int, message: NewMessage) -> StoredMessage:
        """Append one complete message (with its usage, for a model reply). Its running token total stays exact across
        processes: one writing statement reads and moves it (see MESSAGE_INSERT)."""
        return await self._db.run(self._add_message(conversation_id, message))

    def _add_message(self, conversation_id: int, message: NewMessage) -> Script[StoredMessage]:
        """One message; with images, in one transaction with them, holding the conversation's lock."""
        if message.images:
            yield Serialize(conversation_lock(conversation_id))
        [[new_id]] = yield (self.MESSAGE_INSERT, message_params(conversation_id, message))
        if message.images:
            yield from add_images(new_id, message)
            yield Serialize(None)
        return stored_message(new_id, conversation_id, message)

    async def add_reply(
        self,
        conversation_id: int,
        message: NewMessage,
        settlement: Settlement,
        lease: TurnLease | None = None,
        running: InFlightLease | None = None,
    ) -> tuple[StoredMessage, bool]:
        """Append a model's reply and settle its call in one transaction (one commit where there were up to
        four: the turn's `lease` and the request's in-flight lease, `running`, are released in it too);
        False when the call's hold had been lost."""
        assert not message.images, "a model's reply carries no images"
        statements = self.reply_statements(conversation_id, message, settlement, (lease, running))
        reply_id, settled = await self._close_turn(statements)
        for released in (lease, running):
            if released is not None:
                released.released = True
        return stored_message(reply_id, conversation_id, message), settled

    def reply_statements(
        self, conversation_id: int, message: NewMessage, settlement: Settlement, held: Held
    ) -> list[Statement]:
        """add_reply's statements: the reply's insert, its settlement, then the releases of what the turn `held`."""
        lease, running = held
        release = self.lease_release(lease) if lease is not None else []
        if running is not None:
            release += self._ledger.in_flight_release(running.id)
        settle = (SETTLE, settle_params(settlement))
        return [(self.MESSAGE_INSERT, message_params(conversation_id, message)), settle, *release]

    async def _close_turn(self, statements: list[Statement]) -> tuple[int, bool]:
        """add_reply's statements (MESSAGE_INSERT, SETTLE, then the releases) as one transaction: the reply's id, and
        whether SETTLE found its hold."""
        added, settled, *_ = await self._db.batch(statements)
        return int(added[0][0]), bool(settled)

    def lease_release(self, lease: TurnLease) -> list[Statement]:
        """The statements that release a turn lease (a store without leases has none)."""
        return []

    async def window(self, conversation_id: int, budget_tokens: int) -> list[WindowMessage]:
        """The newest messages that fit `budget_tokens`, oldest first: one indexed range scan."""
        return await self._db.run(_window(conversation_id, budget_tokens))

    async def message_images(self, message_ids: Sequence[int]) -> dict[int, list[StoredImage]]:
        """The images stored with these messages (a window's), by message id, in the order they were sent."""
        if not message_ids:
            return {}
        return _images(await self._db.fetch(MESSAGE_IMAGES, list(message_ids)))

    async def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The whole conversation, oldest first."""
        return [_message(row) for row in await self._db.fetch(MESSAGES, conversation_id)]

    async def claim_delivery(self, platform: str, delivery_id: str, now: datetime) -> bool:
        """True the first time (platform, delivery_id) is seen, in any process: one primary-key insert."""
        return await self._db.fetchrow(CLAIM_DELIVERY, platform, delivery_id, now.isoformat()) is not None

    async def forget_deliveries(self, before: datetime) -> int:
        """Drop claims older than `before`."""
        return await self._db.execute(FORGET_DELIVERIES, before.isoformat())

    async def delete_platform_message(self, message: PlatformMessage) -> int:
        """A message deleted on its platform: it, the replies to it and their vectors go; how many rows went."""
        if not message.message_id:
            return 0
        async with self._db.transaction() as tx:
            touched = await self._lock_totals(tx, PLATFORM_CONVERSATIONS, *_platform_params(message))
            replies = await tx.fetch(DELETE_PLATFORM_REPLIES, *_platform_params(message))
            messages = await tx.fetch(DELETE_PLATFORM_MESSAGE, *_platform_params(message))
            await self._recount(tx, touched)
            await tx.execute(DROP_UNPOSTED, *_platform_params(message)[:3])  # a digest waiting may quote it
        return len(replies) + len(messages)

    async def edit_platform_message(self, message: PlatformMessage, author_id: str, text: str, tokens: int) -> int:
        """A message its author edited on the platform: the stored text is replaced and will be embedded again
        (the old vector is dropped at once). Returns how many stored messages changed."""
        if not message.message_id:
            return 0
        await self._db.execute(DROP_UNPOSTED, *_platform_params(message)[:3])  # a digest waiting may quote the old text
        changed = 0
        for message_id, conversation_id in await self._db.fetch(EDITED_MESSAGES, *_platform_params(message), author_id):
            async with self._db.transaction(conversation_lock(conversation_id)) as tx:
                size = await tx.fetchrow(MESSAGE_SIZE, message_id)
                if size is None:  # deleted meanwhile
                    continue
                old_tokens, tokens_before = size
                await tx.execute(REPLACE_TEXT, message_id, text, tokens)
                await tx.execute(DROP_VECTOR, message_id)
                if tokens != old_tokens:
                    await tx.execute(SHIFT_TOTALS, conversation_id, tokens - old_tokens, tokens_before, message_id)
                # Recounted even at the same size: every change to a conversation's messages moves its row on, so a
                # turn that read them before it knows to read them again (PostgreSQL's OPEN_AND_ASK).
                await self._recount(tx, [conversation_id])
                changed += 1
        return changed

    async def _lock_totals(self, tx: Connection, conversations: str, *params: object) -> list[int]:
        """Before messages go: the conversations that the query `conversations` names (by id), locked in `tx`
        for `_recount`. A store that keeps no running total per conversation (SQLite: each message reads it from
        the messages before it) has none to lock."""
        return []

    async def _recount(self, tx: Connection, conversation_ids: list[int]) -> None:
        """After messages' tokens changed (edited, deleted) in `tx`, which holds these conversations' locks: their
        running totals set again from their messages. A store that keeps none has nothing to do."""

    async def forget_user(
        self, team_id: str, user_id: str, pseudonym: str, *, keep_day: str | None = None
    ) -> dict[str, int]:
        """Delete a user's messages (and the replies to them), prompt runs, ratings and dashboard sign-ins in a team;
        replace their id by `pseudonym` where the team's records must stay (ledger costs, authorship).

        `pseudonym` must be new (random) each time. The user's spend of `keep_day` (the quota day in
        force) keeps counting against their daily limits, as a total without the calls behind it.
        """
        if not team_id or not user_id:  # '' would mean everyone's sign-ins to END_SIGNINS
            raise ValueError("forget_user needs a team and a user")
        counts: dict[str, int] = {}
        async with self._db.transaction() as tx:
            touched = await self._lock_totals(tx, MY_CONVERSATIONS, team_id, user_id)
            replies = len(await tx.fetch(FORGET_REPLIES, team_id, user_id))
            counts["messages"] = len(await tx.fetch(FORGET_MESSAGES, team_id, user_id))
            counts["replies"] = replies
            await self._recount(tx, touched)
            counts["ratings"] = len(await tx.fetch(FORGET_RATINGS, team_id, user_id))
            await tx.execute(FORGET_RATINGS_OF_RUNS, team_id, user_id)
            counts["prompt runs"] = len(await tx.fetch(FORGET_RUNS, team_id, user_id))
            # Their open dashboard sessions end and unused links stop working: the rows with their id and name go.
            counts["dashboard sign-ins"] = sum([len(await tx.fetch(sql, team_id, user_id)) for sql in END_SIGNINS])
            # Which channel they viewed beside the assistant pane is theirs: it goes.
            counts["assistant threads"] = len(await tx.fetch(FORGET_ASSISTANT_THREADS, team_id, user_id))
            # A digest waiting to be posted summarizes its channel, maybe them: its retry summarizes again.
            await tx.execute(FORGET_UNPOSTED, team_id)
            pseudonymized = 0
            pseudonymized += await tx.execute(FORGET_LEDGER_ROWS, team_id, user_id, pseudonym)
            pseudonymized += await tx.execute(FORGET_LEDGER_TOTALS, team_id, user_id, pseudonym, keep_day)
            if keep_day is not None:
                await tx.execute(FORGET_LEDGER_TODAY, team_id, pseudonym, keep_day)
            for sql in PSEUDONYMIZE:
                pseudonymized += await tx.execute(sql, team_id, user_id, pseudonym)
            counts["records pseudonymized"] = pseudonymized
        return counts


def _platform_params(message: PlatformMessage) -> tuple[str, str, str, str]:
    return (message.platform, message.team_id, message.channel_id, message.message_id)


# A turn's lease on its thread and its request's in-flight lease (None: not held), released with its reply.
Held = tuple[TurnLease | None, InFlightLease | None]


class ConversationRead(NamedTuple):
    """A turn's conversation as its first statements read it; and, when the question was stored with the read, the
    question and the messages of its window up to it, read by the widest window it can have (its room is decided
    after the read): the question last."""

    conversation: Conversation
    question: StoredMessage | None = None
    widest: tuple[WindowMessage, ...] = ()


def window_ending(messages: Sequence[WindowMessage], window_tokens: int) -> list[WindowMessage]:
    """The window of `window_tokens` that ends at the last of `messages` (WINDOW's rule, as if nothing came after
    it), when `messages` hold at least every message it takes, in order."""
    if window_tokens <= 0 or not messages:
        return []
    last = messages[-1]
    start = last.tokens_before + last.tokens - window_tokens
    return [m for m in messages if m.tokens_before >= start]


def key_params(key: ConversationKey) -> tuple[str, str, str, str]:
    return (key.platform, key.team_id, key.channel_id, key.thread_id)


def _message(row: Row) -> StoredMessage:
    return StoredMessage(
        id=row[0], conversation_id=row[1], role=row[2], content=row[3], tokens=row[4],
        created_at=datetime.fromisoformat(row[5]), author_id=row[6], author_name=row[7],
        usage=ModelUsage(row[8], row[9], row[10]) if row[8] is not None else None,
    )  # fmt: skip


def _active_conversation(key: ConversationKey, now: datetime) -> Script[Conversation]:
    rows = yield (OPEN_CONVERSATION, key_params(key))
    if not rows:
        rows = yield (START_CONVERSATION, (*key_params(key), now.isoformat()))
    if not rows:  # started meanwhile by another process
        rows = yield (OPEN_CONVERSATION, key_params(key))
    return conversation_of(key, rows[0])


def conversation_of(key: ConversationKey, row: Row) -> Conversation:
    """The conversation at `key` from a row as OPEN_CONVERSATION reads it."""
    return Conversation(row[0], key, datetime.fromisoformat(row[1]), row[2], row[3], row[4])


def add_images(message_id: int, message: NewMessage) -> Script[None]:
    """The message's images, stored with it (in its transaction)."""
    for position, i in enumerate(message.images):
        yield (ADD_IMAGE, (message_id, position, i.name, i.media_type, i.data, i.width, i.height, i.detail, i.tokens))


def _window(conversation_id: int, budget_tokens: int) -> Script[list[WindowMessage]]:
    if budget_tokens <= 0:
        return []
    rows = yield (WINDOW, (conversation_id, budget_tokens))
    return list(map(WindowMessage._make, rows))


def _images(rows: list[Row]) -> dict[int, list[StoredImage]]:
    images: dict[int, list[StoredImage]] = {}
    for row in rows:
        message_id, name, media_type, data, width, height, detail, tokens = tuple(row)
        images.setdefault(message_id, []).append(
            StoredImage(name, media_type, bytes(data), width, height, detail, tokens)
        )
    return images


def message_params(conversation_id: int, message: NewMessage) -> tuple[object, ...]:
    """ADD_MESSAGE's parameters."""
    usage = message.usage
    return (
        conversation_id, message.role, message.content, message.tokens, message.author_id,
        message.author_name, message.platform_message_id, usage.model if usage else None,
        usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
        message.created_at.isoformat(), message.reply_to, len(message.images),
    )  # fmt: skip


def stored_message(new_id: int, conversation_id: int, message: NewMessage) -> StoredMessage:
    """The message as stored under `new_id`."""
    return StoredMessage(
        id=new_id, conversation_id=conversation_id, role=message.role, content=message.content,
        tokens=message.tokens, created_at=message.created_at, author_id=message.author_id,
        author_name=message.author_name, usage=message.usage,
    )  # fmt: skip
