"""The engine: takes one normalized message and answers it through the adapter's Responder."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from bot.commands.registry import CommandContext
from bot.commands.services import CommandServices
from bot.dashboard.roles import Roles
from bot.digests import CatchUpPoster, DigestRunner, run_every_minute
from bot.directory import ChannelAccess
from bot.errors import ModelUnreachable, UserFacingError
from bot.media.transcription import TranscribeOptions
from bot.media.voice import audio_attachment, transcribe_message
from bot.messages import IncomingMessage
from bot.responder import Responder
from storage import ConversationKey, PlatformMessage, Store, StoredMessage, StoreFailed
from storage.ledger_records import InFlightLease

log = logging.getLogger(__name__)

# Slack retries a delivery for about an hour at most; a day of memory is ample.
DELIVERY_MEMORY = timedelta(days=1)
STORE_BUSY = "The bot's database is busy (another process is writing to it). Please send that again in a moment."
STORE_FAILED = "The bot could not use its database (disk full or failing); the error is in its log for an admin."
SHUTTING_DOWN = "The bot is restarting; please send that again in a minute."
GENERIC_FAILURE = "Sorry, something went wrong on my side. It has been logged; please try again."
_HEALTH_KEY = ConversationKey("health", "health", "health")  # never a real conversation
EMPTY_MESSAGE = "I'm here. Write your question after the mention, or try /{help}."
EMPTY_DIRECT = "I'm here. Write your question, or try /{help}."
VOICE_HINT = (
    "I got a recording but do not transcribe voice messages on my own here. To get its text, use "
    "/{transcribe} with it; or ask whoever runs me to set TRANSCRIBE_VOICE_MESSAGES=true."
)


class Engine:
    """Dispatches a message to a command or a chat turn; turns every failure into a clear reply."""

    def __init__(self, *, services: CommandServices, store: Store, roles: Roles) -> None:
        missing = services.missing()
        if missing:
            raise ValueError(f"the engine needs every command service; missing: {', '.join(missing)}")
        self.services = services
        self.settings = services.settings
        self.store = store
        self.memory = services.memory
        self.prompts = services.prompts
        self.images = services.images
        self.transcriber = services.transcriber
        self.speaker = services.speaker
        self.conversations = services.conversations
        self.budget = services.budget
        self.quota_admin = services.quota
        self.commands = services.commands
        self.signin = services.signin
        self.roles = roles  # each platform adapter adds itself: the dashboard asks it for roles
        self.channel_access: dict[str, ChannelAccess] = {}  # each adapter adds itself: digests post through it
        self._clock = services.clock
        self._next_delivery_sweep = self._clock()
        self._running: set[asyncio.Task[Any]] = set()
        self._closing = False

    async def health(self) -> dict[str, str]:
        """What a load balancer's health check needs: whether the database answers (raises if it does not)."""
        await self.store.has_open_conversation(_HEALTH_KEY)  # a cheap indexed read proves the database answers
        return {"database": "reachable"}

    def now(self) -> datetime:
        """The engine's clock."""
        return self._clock()

    async def drain(self, grace_seconds: float, abort: asyncio.Event | None = None) -> int:
        """Stop taking messages; let those in flight finish within the grace period (or until `abort`), then cancel.

        A cancelled turn abandons its reply and releases its reservation (see stream_reply and
        Budget.metered); its question stays stored. Returns how many had to be cancelled.
        """
        self._closing = True
        running = set(self._running)
        if not running:
            return 0
        finished = asyncio.ensure_future(asyncio.wait(running, timeout=grace_seconds))
        aborted = asyncio.ensure_future((abort or asyncio.Event()).wait())
        try:
            await asyncio.wait({finished, aborted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            aborted.cancel()
        late = {task for task in running if not task.done()}
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5)
            log.warning(
                "shutdown: %d turn(s) did not finish within %.0f s and were abandoned", len(late), grace_seconds
            )
        return len(late)

    @asynccontextmanager
    async def background(self, stop: asyncio.Event) -> AsyncIterator[None]:
        """Run the background work (reading the token vocabulary once, embedding messages for memory, posting due
        digests) for the block; stopped with `stop`."""
        poster = CatchUpPoster(self.services.catchups, self.channel_access, self.settings)
        digests = DigestRunner(self.services.digests, self._clock, self.settings.quota_timezone, poster)
        tasks = {
            # ~0.5 s of reading at start rather than on the first message, which then answers without waiting.
            "reading the token vocabulary": asyncio.create_task(
                asyncio.to_thread(self.conversations.warm_tokens), name="tokens"
            ),
            "background embedding": asyncio.create_task(self.memory.run(stop), name="memory"),
            "the digest scheduler": asyncio.create_task(run_every_minute(digests.run_due, stop), name="digests"),
        }
        try:
            yield
        finally:
            stop.set()
            for what, task in tasks.items():
                try:
                    await asyncio.wait_for(task, timeout=10)
                except TimeoutError:
                    log.warning("%s did not stop within 10 s; abandoned", what)

    def _is_voice_message(self, message: IncomingMessage) -> bool:
        """Audio sent to the bot with no text: transcribed when TRANSCRIBE_VOICE_MESSAGES is on."""
        return (
            self.settings.transcribe_voice_messages
            and not message.text.strip()
            and audio_attachment(message) is not None
        )

    async def knows_thread(self, key: ConversationKey) -> bool:
        """Whether the bot is already in this thread's conversation (so a reply needs no mention)."""
        return await self.store.has_open_conversation(key)

    async def stored_messages(self, key: ConversationKey) -> list[StoredMessage]:
        """The open conversation's messages at `key`, oldest first (none when there is none).

        The history of a platform that keeps none of its own (the console).
        """
        if not await self.store.has_open_conversation(key):
            return []
        conversation = await self.store.active_conversation(key, self._clock())
        return await self.store.messages(conversation.id)

    async def message_deleted(self, message: PlatformMessage) -> int:
        """A platform says a message was deleted: it leaves history and memory, with the replies to it."""
        return await self.conversations.deleted(message)

    async def message_edited(self, message: PlatformMessage, author_id: str, text: str) -> int:
        """A platform says a person edited their message: the stored text and its vector follow. No answer."""
        return await self.conversations.edited(message, author_id, text)

    async def first_delivery(self, platform: str, delivery_id: str) -> bool:
        """True the first time a platform event is seen; False for a redelivery (answer it once).

        Claims are kept in the database, so they hold across restarts and several processes.
        """
        now = self._clock()
        if now >= self._next_delivery_sweep:
            self._next_delivery_sweep = now + DELIVERY_MEMORY
            await self.store.forget_deliveries(now - DELIVERY_MEMORY)
        return await self.store.claim_delivery(platform, delivery_id, now)

    async def handle(self, message: IncomingMessage, responder: Responder) -> None:
        """Answer one message. Never raises for a user's mistake or a provider's failure."""
        if self._closing:
            await responder.send_error(SHUTTING_DOWN)
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            # A flood from one person must not starve everyone else: past MAX_USER_IN_FLIGHT running
            # (counted across every process on the database), refuse politely and keep nothing.
            async with self.budget.in_flight(
                message.platform, message.team_id, message.author.id, self.settings.max_user_in_flight
            ) as running:
                await self._dispatch(message, responder, running)
        except StoreFailed as exc:
            log.error("storage failed for %s message %s: %s", message.platform, message.message_id, exc)
            await _tell(responder, STORE_BUSY if exc.busy else STORE_FAILED)
        except UserFacingError as exc:
            log.info("refused %s message %s: %s", message.platform, message.message_id, type(exc).__name__)
            # A setting to fix (a model the server lacks…) is named to admins; others get the short message.
            # An address the model server cannot be reached at is also told on the console, the
            # operator's own terminal, where it is the first thing to check.
            unreachable = isinstance(exc, ModelUnreachable) and message.platform == "console"
            detail = exc.admin_detail if message.author.is_admin or unreachable else None
            await _tell(responder, f"{exc.message}\n{detail}" if detail else exc.message)
        except Exception:
            log.exception("failed to handle %s message %s", message.platform, message.message_id)
            await _tell(responder, GENERIC_FAILURE)
        finally:
            if task is not None:
                self._running.discard(task)

    async def _dispatch(self, message: IncomingMessage, responder: Responder, running: InFlightLease) -> None:
        if message.command is not None:
            await self.commands.run(CommandContext(self.services, message, message.command, responder))
        elif self._is_voice_message(message):
            await transcribe_message(self.transcriber, self.conversations, message, responder, TranscribeOptions())
        elif message.text.strip() or (message.attachments and audio_attachment(message) is None):
            await self.conversations.turn(message, responder, running)
        else:
            hint = VOICE_HINT if audio_attachment(message) else EMPTY_DIRECT if message.is_direct else EMPTY_MESSAGE
            names = self.commands.public_name
            # Not private: a hint holds nothing personal (and a DM for it, on Discord, would be odd).
            await responder.send_text(hint.format(help=names("help"), transcribe=names("transcribe")))


async def _tell(responder: Responder, message: str) -> None:
    """Send an error, never raising: when the platform itself is failing, the log is all we have."""
    try:
        await responder.send_error(message)
    except Exception:
        log.exception("could not deliver an error message to the platform")
