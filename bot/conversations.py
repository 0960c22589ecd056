"""Chat turns: the thread is the conversation, remembered in the Store, sent to the model in a window."""

from __future__ import annotations

import asyncio
import logging

from bot.clock import Clock
from bot.errors import MessageTooLong, ModelError, ModelUnavailable
from bot.llm import ChatModel, ChatResult, PromptMessage
from bot.locks import KeyedLocks
from bot.messages import IncomingMessage
from bot.prompt import build_prompt
from bot.responder import Responder
from bot.settings import Settings
from bot.tokens import TOKENS_PER_REPLY, TokenCounter
from storage import ModelUsage, NewMessage, Store

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
    ) -> None:
        self._settings = settings
        self._store = store
        self._model = model
        self._tokens = tokens
        self._clock = clock
        self._locks = KeyedLocks()
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
            budget = self._history_budget(system)
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
            result = await self._answer(build_prompt(system, history), responder)
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

    async def ask(self, question: str, responder: Responder) -> None:
        """A one-shot question: no history is read or written."""
        system = self._settings.system_prompt
        budget = self._history_budget(system)
        tokens = self._tokens.count_message(question)
        if tokens > budget:
            raise MessageTooLong(f"Your question is {tokens:,} tokens; the limit is {budget:,}.")
        result = await self._answer([*build_prompt(system, []), PromptMessage("user", question)], responder)
        await self._after_reply(result, responder)

    async def reset(self, message: IncomingMessage) -> bool:
        """End the conversation at the message's thread; the next message starts a fresh one."""
        async with self._locks.hold(message.conversation_key):
            return await self._store.end_conversation(message.conversation_key, self._clock())

    def _history_budget(self, system_prompt: str) -> int:
        """Tokens for history: the input budget less the system prompt and the reply's priming."""
        used = (self._tokens.count_message(system_prompt) if system_prompt else 0) + TOKENS_PER_REPLY
        return self._settings.input_token_budget - used

    async def _answer(self, prompt: list[PromptMessage], responder: Responder) -> ChatResult:
        """Stream the model's reply to the responder; on failure mark the partial reply abandoned."""
        await responder.show_status("thinking…")
        async with self._in_flight:
            stream = responder.stream()
            try:
                result = await self._model.chat(
                    prompt,
                    model=self._settings.chat_model,
                    max_output_tokens=self._settings.max_output_tokens,
                    on_text=stream.append,
                )
                if not result.text.strip():
                    raise ModelUnavailable("The model returned an empty reply. Please try again.")
            except (ModelError, asyncio.CancelledError):
                await stream.abandon()
                raise
        if result.usage is None:
            # Some OpenAI-compatible servers do not report streamed usage: count it ourselves.
            result = ChatResult(result.text, self._estimate_usage(prompt, result.text), result.finish_reason)
        await stream.finish()
        return result

    def _estimate_usage(self, prompt: list[PromptMessage], reply: str) -> ModelUsage:
        prompt_tokens = sum(self._tokens.count_message(m.content) for m in prompt) + TOKENS_PER_REPLY
        return ModelUsage(self._settings.chat_model, prompt_tokens, self._tokens.count(reply))

    async def _after_reply(self, result: ChatResult, responder: Responder) -> None:
        if result.finish_reason == "length":
            await responder.send_text(
                f"(The reply stopped at the {self._settings.max_output_tokens:,}-token limit; say “continue” for more.)"
            )
