"""Chat turns: the thread is the conversation, remembered in the Store, sent to the model in a window."""

from __future__ import annotations

import logging

from bot.billing.budget import charge_for
from bot.billing.metering import Cell, Completion, Early, Keeper, MeteredChat
from bot.billing.prices import PriceTable
from bot.chat.locks import KeyedLocks
from bot.chat.replies import stream_reply
from bot.chat.window import build_prompt, recalled_block
from bot.clock import Clock
from bot.errors import MessageTooLong
from bot.media.image_limits import ImageLimits
from bot.media.inputs import MessageInputs, read_inputs
from bot.media.vision import Detail, VisionFormula, VisionImage, data_url
from bot.memory.semantic import Memory
from bot.messages import IncomingMessage
from bot.providers.llm import Finish, PromptImage, PromptMessage, effort
from bot.providers.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, TokenCounter
from bot.responder import Responder
from bot.settings import Settings
from bot.tools.loop import Offer, Recorder, ToolLoop
from bot.tools.registry import ToolUse
from storage import Conversation, NewMessage, PlatformMessage, Store, StoredImage, WindowMessage
from storage.ledger_records import InFlightLease, ReservationRequest, Settlement
from storage.turn_records import EagerQuestion, Question, TurnOpening

log = logging.getLogger(__name__)


class Conversations:
    """Runs chat turns and one-shot questions against the model, with history from the Store."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        chat: MeteredChat,
        tokens: TokenCounter,
        memory: Memory,
        clock: Clock,
        prices: PriceTable,
        image_limits: ImageLimits,
        tools: ToolLoop | None = None,
    ) -> None:
        self._settings = settings
        self._tools = tools
        self._image_limits = image_limits
        self._prices = prices
        self._memory = memory
        self._store = store
        self._chat = chat
        self._tokens = tokens
        self._clock = clock
        self._locks = KeyedLocks()
        self._framing_tokens: dict[str, int] = {}

    async def turn(self, message: IncomingMessage, responder: Responder, running: InFlightLease | None = None) -> None:
        """One chat turn: store the user's message, answer from the history window, store the reply.

        The user's message is stored before the model is called, so a failed call never loses it;
        the reply is stored only once complete, with its usage, so history never holds half a reply.
        The conversation keeps the channel persona it started with; the channel's model applies now.
        The request's in-flight lease (`running`) is released with the reply, in the same transaction.
        What comes before the call (conversation, question, window, reservation) is one trip to the
        store (`Store.open_turn`); the reply and its settlement one more.
        """
        key = message.conversation_key
        use = ToolUse(message, responder)
        # In-process first, so waiting turns do not each hold a database connection for the lock.
        async with self._locks.hold(key), self._store.turn_lock(key) as lease:
            offer = await self._tools.offer(use) if self._tools is not None and self._tools_on() else None
            known, inputs = None, None
            if message.attachments:  # reading them needs the conversation's model: read it first
                known = await self._store.active_conversation(key, self._clock())
                inputs = await self._inputs(message.text, message, self._model(known), self._room(known))
            tokens = self._tokens.count_message(message.text) if inputs is None else inputs.tokens

            # The model slot is taken before the first write, so the call's reservation can go with it.
            async with self._chat.early() as early:

                def asked(text: str, tokens: int, images: tuple[StoredImage, ...] = ()) -> NewMessage:
                    """The question as stored."""
                    return NewMessage(
                        role="user",
                        content=text,
                        tokens=tokens,
                        created_at=message.created_at,
                        author_id=message.author.id,
                        author_name=message.author.display_name,
                        platform_message_id=message.message_id,
                        images=images,
                    )

                # Plain text is stored alike in any conversation with room for it: the store may write it with
                # its read of the conversation (one round trip fewer on PostgreSQL).
                eager = None if inputs is not None else self._eager(asked(message.text, tokens))

                def question(conversation: Conversation) -> Question:
                    """The question as stored (too long: refused before anything is written) and its window."""
                    room = self._room(conversation)
                    if eager is not None:
                        stored = eager.message
                        self._fitting(
                            tokens, room, 0
                        )  # raises when too long (never once stored: the bound is stricter)
                    else:  # read with the conversation's room already (see _inputs)
                        assert inputs is not None
                        stored = asked(inputs.text, inputs.tokens, tuple(_stored(i) for i in inputs.images))
                    vision = self._prices.vision(self._model(conversation)) is not None
                    return Question(stored, room, images=vision)

                def reservation(conversation: Conversation, window: list[WindowMessage]) -> ReservationRequest | None:
                    """The call's reservation, written with the question, unless recall may still change the prompt."""
                    if self._may_recall(window):
                        return None
                    model = self._model(conversation)
                    size = self._framing(self._system(conversation)) + sum(m.tokens for m in window)
                    return early.request(
                        charge_for(message, "chat", model), model, size + (offer.tokens if offer else 0)
                    )

                opened = await self._store.open_turn(
                    TurnOpening(key, self._clock(), question, reservation, known, eager)
                )
                early.reserved = opened.reserved
                conversation, stored, history = opened.conversation, opened.question, opened.window
                system = self._system(conversation)
                framing = self._framing(system)
                budget = self._room(conversation)
                model = self._model(conversation)
                history, recalled, recalled_tokens = await self._recall(
                    message, stored.id, conversation.id, history, budget
                )
                # The prompt's size comes from the counts stored with each message: O(window), no re-tokenizing.
                cell = Cell(
                    build_prompt(system, history, recalled, _window_images(opened.images)),
                    framing + recalled_tokens + sum(m.tokens for m in history),
                    model,
                    reasoning_effort=effort(conversation.reasoning_effort),
                )

                async def keep(completion: Completion, settlement: Settlement) -> bool:
                    """The reply joins the history in the transaction that settles its call."""
                    reply = NewMessage(
                        role="assistant",
                        content=completion.text,
                        tokens=self._tokens.count_message(completion.text),
                        created_at=self._clock(),
                        usage=completion.usage,
                        reply_to=stored.id,
                    )
                    _, held = await self._store.add_reply(conversation.id, reply, settlement, lease, running)
                    return held

                async def record(found: str) -> None:
                    """What a tool step found joins the history before the answer, so follow-ups see it."""
                    tokens = self._tokens.count_message(found)
                    note = NewMessage("assistant", found, tokens, self._clock(), reply_to=stored.id)
                    await self._store.add_message(conversation.id, note)

                completion = await self._reply(cell, message, responder, keep, record, early=early, offer=offer)
        self._memory.notify()
        await self.after_reply(completion, responder)

    def _tools_on(self) -> bool:
        return self._tools is not None and self._tools.enabled

    def _system(self, conversation: Conversation) -> str:
        return self._settings.system_prompt if conversation.system_prompt is None else conversation.system_prompt

    def _model(self, conversation: Conversation) -> str:
        return conversation.model or self._settings.chat_model

    def _room(self, conversation: Conversation) -> int:
        """The prompt's tokens left for the history window, the question included."""
        return self._settings.input_token_budget - self._framing(self._system(conversation))

    def _may_recall(self, history: list[WindowMessage]) -> bool:
        """Whether recall may bring older messages into this window (the window left some out)."""
        return self._memory.enabled and bool(history) and history[0].tokens_before != 0

    async def _recall(
        self, message: IncomingMessage, message_id: int, conversation_id: int, history: list[WindowMessage], budget: int
    ) -> tuple[list[WindowMessage], str | None, int]:
        """When the window leaves older messages out, make room for the most relevant of them.

        Returns the (possibly shorter) window, the recalled block and its tokens; the window plus
        the block stay within `budget`.
        """
        if not self._may_recall(history):
            return history, None, 0
        room = min(self._settings.memory_recall_tokens, budget // 4)
        shorter = await self._store.window(conversation_id, budget - room)
        if not shorter or shorter[-1].id != message_id:
            return history, None, 0  # the question alone needs the room
        hits = await self._memory.recall(message, message_id, conversation_id, shorter[0].id, room)
        while hits:
            block = recalled_block(hits)
            tokens = self._tokens.count_message(block)
            if tokens <= room:
                return shorter, block, tokens
            hits.remove(min(hits, key=lambda h: h.score))  # the labels did not fit: drop the least similar
        return history, None, 0

    async def ask(self, question: str, message: IncomingMessage, responder: Responder) -> Completion:
        """A one-shot question: no history is read or written (the call is metered all the same)."""
        channel = await self._store.channel_settings(message.platform, message.team_id, message.channel_id)
        system = self._settings.system_prompt if channel.persona is None else channel.persona
        framing = self._framing(system)
        model = channel.model or self._settings.chat_model
        inputs = await self._inputs(question, message, model, self._settings.input_token_budget - framing)
        prompt = [*build_prompt(system, []), PromptMessage("user", inputs.text, _prompt_images(inputs.images))]
        cell = Cell(prompt, framing + inputs.tokens, model, reasoning_effort=effort(channel.reasoning_effort))
        completion = await self._reply(cell, message, responder)
        await self.after_reply(completion, responder)
        return completion

    async def remember(self, message: IncomingMessage, said: str, answer: str) -> None:
        """Store an exchange that did not go through the chat model (a transcript), so follow-ups see it.

        An answer too long for the history window is stored cut to fit, with a note saying so.
        """
        key = message.conversation_key
        async with self._locks.hold(key), self._store.turn_lock(key):
            conversation = await self._store.active_conversation(key, self._clock())
            system = self._settings.system_prompt if conversation.system_prompt is None else conversation.system_prompt
            room = (self._settings.input_token_budget - self._framing(system)) // 2
            if self._tokens.count_message(answer) > room:
                # Cutting by characters at ~3 per token then checking keeps this linear.
                answer = answer[: room * 3]
                while self._tokens.count_message(answer) > room - 20:
                    answer = answer[: int(len(answer) * 0.9)]
                answer += "\n[…the rest of the transcript was too long to keep in the conversation]"
            question = await self._store.add_message(
                conversation.id,
                NewMessage(
                    role="user",
                    content=said,
                    tokens=self._tokens.count_message(said),
                    created_at=message.created_at,
                    author_id=message.author.id,
                    author_name=message.author.display_name,
                    platform_message_id=message.message_id,
                ),
            )
            await self._store.add_message(
                conversation.id,
                NewMessage(
                    role="assistant",
                    content=answer,
                    tokens=self._tokens.count_message(answer),
                    created_at=self._clock(),
                    reply_to=question.id,
                ),
            )
        self._memory.notify()

    async def summarize(self, text: str, message: IncomingMessage, responder: Responder) -> None:
        """Stream a short summary of `text` (a transcript); metered as chat."""
        instruction = "Summarize this transcript in a few bullet points, in its own language. Note any decisions."
        room = self._settings.input_token_budget - self._framing(self._settings.system_prompt) - 50
        if self._tokens.count_message(text) > room:
            text = text[: room * 3]  # a long transcript is summarized from its beginning
        prompt = [*build_prompt(self._settings.system_prompt, []), PromptMessage("user", f"{instruction}\n\n{text}")]
        cell = Cell(prompt, self._chat.prompt_tokens(prompt), self._settings.chat_model)
        await self.after_reply(await self._reply(cell, message, responder, tools=False), responder)

    async def deleted(self, message: PlatformMessage) -> int:
        """A message deleted on its platform leaves history and memory, with the bot's replies to it."""
        removed = await self._store.delete_platform_message(message)
        if removed:
            log.info("deleted %d stored message(s) for %s message %s", removed, message.platform, message.message_id)
        return removed

    async def edited(self, message: PlatformMessage, author_id: str, text: str) -> int:
        """A message its author edited: the stored text is replaced (and embedded again). Only storage and
        memory change: an edit never starts an answer."""
        changed = await self._store.edit_platform_message(message, author_id, text, self._tokens.count_message(text))
        if changed:
            self._memory.notify()
            log.info("replaced %d stored message(s) for an edit (%d chars)", changed, len(text))
        return changed

    async def reset(self, message: IncomingMessage) -> bool:
        """End the conversation at the message's thread; the next message starts a fresh one."""
        async with self._locks.hold(message.conversation_key):
            return await self._store.end_conversation(message.conversation_key, self._clock())

    async def _reply(
        self,
        cell: Cell,
        message: IncomingMessage,
        responder: Responder,
        keep: Keeper | None = None,
        record: Recorder | None = None,
        *,
        tools: bool = True,
        early: Early | None = None,
        offer: Offer | None = None,
    ) -> Completion:
        charge = charge_for(message, "chat", cell.model)
        if tools and self._tools is not None and self._tools_on():
            use = ToolUse(message, responder)
            return await self._tools.run(cell, charge, use, keep=keep, record=record, offer=offer, early=early)
        return await stream_reply(self._chat, cell, charge, responder, keep=keep, early=early)

    async def after_reply(self, completion: Completion, responder: Responder) -> None:
        """Say so when a reply stopped at the output limit."""
        if completion.finish_reason is Finish.OUTPUT_LIMIT:
            await responder.send_text(
                f"(The reply stopped at the {self._chat.max_output_tokens:,}-token limit; say “continue” for more.)"
            )

    async def _inputs(self, text: str, message: IncomingMessage, model: str, budget: int) -> MessageInputs:
        """The message's text with its text files joined, and its images scaled for `model` (checked, not
        spent); MessageTooLong when it does not fit `budget` tokens, before any image is decoded."""

        def check(text: str, image_tokens: int) -> int:
            return self._check_size(text, budget, image_tokens)

        if not message.attachments:
            return MessageInputs(text, tokens=check(text, 0))
        vision = self._prices.vision(model)
        return await read_inputs(
            text,
            message.attachments,
            limits=self._image_limits,
            vision=VisionFormula.from_table(vision) if vision is not None else None,
            model=model,
            detail=self._settings.vision_detail,
            check=check,
            max_document_pages=self._settings.max_document_pages,
        )

    def warm_tokens(self) -> None:
        """Read the chat model's token vocabulary now (blocking: run it in a thread) rather than on the first count."""
        self._tokens.warm()

    def _check_size(self, text: str, budget: int, image_tokens: int) -> int:
        """The text's tokens, or MessageTooLong when the message (text and images) cannot fit."""
        return self._fitting(self._tokens.count_message(text), budget, image_tokens)

    @staticmethod
    def _fitting(tokens: int, budget: int, image_tokens: int) -> int:
        """`tokens`, or MessageTooLong when a message of `tokens` text tokens and its images cannot fit."""
        if tokens + image_tokens <= budget:
            return tokens
        if image_tokens:
            raise MessageTooLong(
                f"Your message is {tokens:,} tokens and its images {image_tokens:,}; this bot reads at most "
                f"{budget:,} per message. Send fewer or smaller images, or a shorter text."
            )
        raise MessageTooLong(
            f"Your message is {tokens:,} tokens; this bot reads at most {budget:,} per message. "
            "Shorten it or send it as a file."
        )

    def _eager(self, question: NewMessage) -> EagerQuestion:
        """`question` (text only) with the system prompts that surely leave it room: any of at most so many bytes (a
        prompt's tokens are at most its UTF-8 bytes, so its framing at most those plus the fixed part), and the
        default one when it does."""
        fixed = TOKENS_PER_MESSAGE + TOKENS_PER_REPLY
        room_for_default = self._settings.input_token_budget - self._framing(self._settings.system_prompt)
        return EagerQuestion(
            question,
            prompt_bytes=self._settings.input_token_budget - fixed - question.tokens,
            default_fits=question.tokens <= room_for_default,
            widest_window=self._settings.input_token_budget,  # a conversation's room: this less its framing
        )

    def _framing(self, system_prompt: str) -> int:
        """Prompt tokens besides the history: the system prompt and the reply's priming (cached)."""
        framing = self._framing_tokens.get(system_prompt)
        if framing is None:
            framing = (self._tokens.count_message(system_prompt) if system_prompt else 0) + TOKENS_PER_REPLY
            self._framing_tokens[system_prompt] = framing
        return framing


def _prompt_images(images: tuple[VisionImage, ...]) -> tuple[PromptImage, ...]:
    return tuple(PromptImage(data_url(i.media_type, i.data), i.detail, i.tokens) for i in images)


def _window_images(stored: dict[int, list[StoredImage]]) -> dict[int, tuple[PromptImage, ...]]:
    """The window's stored images as the prompt shows them (read only for a model that sees images; their
    tokens are already in each message's count). A text-only model gets the text, where "[image: name]" stays."""
    return {
        message_id: tuple(PromptImage(data_url(i.media_type, i.data), _detail(i.detail), i.tokens) for i in images)
        for message_id, images in stored.items()
    }


def _stored(image: VisionImage) -> StoredImage:
    return StoredImage(image.name, image.media_type, image.data, image.width, image.height, image.detail, image.tokens)


def _detail(value: str) -> Detail:
    return "low" if value == "low" else "high" if value == "high" else "auto"
