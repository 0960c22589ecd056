"""Chat turns: the thread is the conversation, remembered in the Store, sent to the model in a window."""

from __future__ import annotations

import asyncio
import logging

from bot.clock import Clock
from bot.errors import MessageTooLong, ModelError, ModelUnavailable
from bot.llm import ChatModel, ChatResult, PromptMessage
from bot.locks import KeyedLocks
from bot.messages import IncomingMessage
from bot.pricing import PriceTable
from bot.prompt import build_prompt
from bot.quotas import Budget
from bot.responder import Responder
from bot.settings import Settings
from bot.tokens import TOKENS_PER_REPLY, TokenCounter
from storage import ModelUsage, NewMessage, Store
from storage.ledger_records import Charge, Units

log = logging.getLogger(__name__)


class Conversations:
    """Runs chat turns and one-shot questions against the model, with history from the Store."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        model: ChatModel,
        tokens: TokenCounter,
        clock: Clock,
        budget: Budget,
        prices: PriceTable,
    ) -> None:
        self._settings = settings
        self._budget = budget
        self._prices = prices
        self._store = store
        self._model = model
        self._tokens = tokens
        self._clock = clock
        self._locks = KeyedLocks()
        self._framing_tokens: dict[str, int] = {}
        # Bounds model calls in flight in this process; more wait their turn.
        self._in_flight = asyncio.Semaphore(settings.max_turns_in_flight)

    async def turn(self, message: IncomingMessage, responder: Responder) -> None:
        """One chat turn: store the user's message, answer from the history window, store the reply.

        The user's message is stored before the model is called, so a failed call never loses it;
        the reply is stored only once complete, with its usage, so history never holds half a reply.
        """
        key = message.conversation_key
        async with self._locks.hold(key):
            system = self._settings.system_prompt
            framing = self._framing(system)
            budget = self._settings.input_token_budget - framing
            tokens = self._tokens.count_message(message.text)
            if tokens > budget:
                raise MessageTooLong(
                    f"Your message is {tokens:,} tokens; this bot reads at most {budget:,} per message. "
                    "Shorten it or send it as a file."
                )
            conversation = await self._store.active_conversation(key, self._clock())
            await self._store.add_message(
                conversation.id,
                NewMessage(
                    role="user",
                    content=message.text,
                    tokens=tokens,
                    created_at=message.created_at,
                    author_id=message.author.id,
                    author_name=message.author.display_name,
                    platform_message_id=message.message_id,
                ),
            )
            history = await self._store.window(conversation.id, budget)
            # The prompt's size comes from the counts stored with each message: O(window), no re-tokenizing.
            prompt_tokens = framing + sum(m.tokens for m in history)
            result = await self._answer(build_prompt(system, history), prompt_tokens, message, responder)
            await self._store.add_message(
                conversation.id,
                NewMessage(
                    role="assistant",
                    content=result.text,
                    tokens=self._tokens.count_message(result.text),
                    created_at=self._clock(),
                    usage=result.usage,
                ),
            )
        await self._after_reply(result, responder)

    async def ask(self, question: str, message: IncomingMessage, responder: Responder) -> None:
        """A one-shot question: no history is read or written (the call is metered all the same)."""
        system = self._settings.system_prompt
        framing = self._framing(system)
        budget = self._settings.input_token_budget - framing
        tokens = self._tokens.count_message(question)
        if tokens > budget:
            raise MessageTooLong(f"Your question is {tokens:,} tokens; the limit is {budget:,}.")
        prompt = [*build_prompt(system, []), PromptMessage("user", question)]
        result = await self._answer(prompt, framing + tokens, message, responder)
        await self._after_reply(result, responder)

    async def reset(self, message: IncomingMessage) -> bool:
        """End the conversation at the message's thread; the next message starts a fresh one."""
        async with self._locks.hold(message.conversation_key):
            return await self._store.end_conversation(message.conversation_key, self._clock())

    def _framing(self, system_prompt: str) -> int:
        """Prompt tokens besides the history: the system prompt and the reply's priming (cached)."""
        framing = self._framing_tokens.get(system_prompt)
        if framing is None:
            framing = (self._tokens.count_message(system_prompt) if system_prompt else 0) + TOKENS_PER_REPLY
            self._framing_tokens[system_prompt] = framing
        return framing

    async def _answer(
        self, prompt: list[PromptMessage], prompt_tokens: int, message: IncomingMessage, responder: Responder
    ) -> ChatResult:
        """Reserve the worst case, stream the reply, settle to the reported usage.

        On failure the partial reply is marked abandoned and the reservation released: a failed
        call charges nothing.
        """
        model = self._settings.chat_model
        max_output = self._settings.max_output_tokens
        charge = Charge(message.platform, message.team_id, message.author.id, message.channel_id, "chat", model)
        worst = Units(input_tokens=prompt_tokens, output_tokens=max_output)
        worst_cost = self._prices.chat_cost(model, prompt_tokens, max_output)
        async with self._budget.hold(charge, worst, worst_cost) as reservation:
            await responder.show_status("thinking…")
            async with self._in_flight:
                stream = responder.stream()
                try:
                    result = await self._model.chat(
                        prompt, model=model, max_output_tokens=max_output, on_text=stream.append
                    )
                    if not result.text.strip():
                        raise ModelUnavailable("The model returned an empty reply. Please try again.")
                except (ModelError, asyncio.CancelledError):
                    await stream.abandon()
                    raise
            usage = result.usage or ModelUsage(model, prompt_tokens, self._tokens.count(result.text))
            await reservation.settle(
                Units(usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens),
                self._prices.chat_cost(model, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens),
            )
        await stream.finish()
        return ChatResult(result.text, usage, result.finish_reason)

    async def _after_reply(self, result: ChatResult, responder: Responder) -> None:
        if result.finish_reason == "length":
            await responder.send_text(
                f"(The reply stopped at the {self._settings.max_output_tokens:,}-token limit; say “continue” for more.)"
            )
