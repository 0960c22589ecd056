"""Chat Completions on an OpenAI-compatible server through the official `openai` client, with its errors
turned into ours and its wire words (finish reasons, message shapes) into the engine's."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import httpx2
import openai
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam, ChatCompletionToolParam

from bot.errors import ContentRefused, ModelError, ModelUnavailable, RateLimited
from bot.providers.errors import FaultLog, translate_error
from bot.providers.kinds import OPENAI_COMPATIBLE
from bot.providers.llm import ChatResult, Effort, Finish, PromptMessage, TextSink, ToolCall
from bot.providers.registry import Provider
from bot.settings import Settings
from storage import ModelUsage

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0  # seconds to open a connection (the openai SDK's own default); a refused one is retried
# Chat Completions' finish reasons; any other word a compatible server sends ends a reply normally.
FINISHES = {"stop": Finish.DONE, "length": Finish.OUTPUT_LIMIT, "tool_calls": Finish.TOOL_CALLS,
            "function_call": Finish.TOOL_CALLS}  # fmt: skip


def make_client(settings: Settings, provider: Provider | None = None) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client for `provider` (default: OPENAI_BASE_URL, OPENAI_API_KEY): its key and base URL,
    the configured timeout; the SDK's own retries off."""
    url, secret = settings.openai_base_url, settings.openai_api_key
    if provider is not None:
        url, secret = provider.base_url, provider.api_key
    # Local OpenAI-compatible servers take no key, but the client insists on one.
    key = secret.get_secret_value() if secret else "not-needed"
    timeout = httpx2.Timeout(settings.openai_timeout, connect=min(CONNECT_TIMEOUT, settings.openai_timeout))
    return openai.AsyncOpenAI(api_key=key, base_url=url, timeout=timeout, max_retries=0)


class OpenAIChat:
    """Chat Completions over `AsyncOpenAI`, streamed, with the real usage of every reply.

    Retries only what cannot have been charged: a 429, a 5xx status before any text arrived, or a
    connection that failed before the request reached the server (refused, a connect timeout).
    A read timeout, a connection dropped after the request was sent or a failure mid-stream is never
    retried (the provider may have done, and billed, the work).
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        max_retries: int = 2,
        max_retry_wait: float = 20.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        default_model: str | None = None,
        faults: FaultLog | None = None,
        provider: Provider | None = None,
    ) -> None:
        self._client = client
        self._provider = provider  # None: the default provider
        self._kind = provider.kind if provider else OPENAI_COMPATIBLE
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._default_model = default_model
        self._faults = faults or FaultLog()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        client: openai.AsyncOpenAI,
        faults: FaultLog | None = None,
        provider: Provider | None = None,
    ) -> OpenAIChat:
        """Chat on `client` (the one of `provider`) with the configured retry policy."""
        return cls(
            client,
            max_retries=settings.openai_max_retries,
            max_retry_wait=settings.openai_max_retry_wait,
            default_model=settings.chat_model,
            faults=faults,
            provider=provider,
        )

    async def chat(
        self,
        messages: Sequence[PromptMessage],
        *,
        model: str,
        max_output_tokens: int,
        temperature: float | None = None,
        on_text: TextSink | None = None,
        tools: Sequence[ChatCompletionToolParam] = (),
        reasoning_effort: Effort | None = None,
    ) -> ChatResult:
        """Stream one reply; retry only where no double charge is possible."""
        attempt = 0
        while True:
            received = False

            async def sink(text: str) -> None:
                nonlocal received
                received = True
                if on_text is not None:
                    await on_text(text)

            try:
                return await self._stream_once(
                    messages, model, max_output_tokens, temperature, sink, tools, reasoning_effort
                )
            except ModelError as exc:
                delay = self._retry_delay(exc, attempt) if not (received or exc.sent) else None
                if delay is None:
                    self._faults.report(exc)
                    raise
                attempt += 1
                log.warning("model call failed (%s); retry %d in %.1f s", type(exc).__name__, attempt, delay)
                await self._sleep(delay)

    def _retry_delay(self, exc: ModelError, attempt: int) -> float | None:
        if attempt >= self._max_retries:
            return None
        if isinstance(exc, RateLimited):
            wait = exc.retry_after if exc.retry_after is not None else 2.0**attempt
            return wait if wait <= self._max_retry_wait else None
        if isinstance(exc, ModelUnavailable) and exc.retryable:
            return min(0.5 * 2.0**attempt + random.uniform(0, 0.25), self._max_retry_wait)
        return None

    async def _stream_once(
        self,
        messages: Sequence[PromptMessage],
        model: str,
        max_output_tokens: int,
        temperature: float | None,
        sink: TextSink,
        tools: Sequence[ChatCompletionToolParam] = (),
        reasoning_effort: Effort | None = None,
    ) -> ChatResult:
        parts: list[str] = []
        calls: dict[int, list[str]] = {}  # a streamed call's index -> [id, name, argument pieces…]
        usage: ModelUsage | None = None
        finish_reason: str | None = None
        started = accepted = False
        sent = messages if self._kind.accepts_second_system_message else merged_system(messages)
        try:
            stream = await self._client.chat.completions.create(
                model=model,
                messages=[_wire(m) for m in sent],
                max_completion_tokens=max_output_tokens,
                temperature=openai.omit if temperature is None else temperature,
                tools=list(tools) if tools else openai.omit,
                reasoning_effort=reasoning_effort or openai.omit,
                stream=True,
                stream_options={"include_usage": True},
            )
            accepted = True  # the server answered 200: from here on it runs, and bills, the call
            async with stream:
                async for chunk in stream:
                    started = True
                    if chunk.usage is not None:
                        details = chunk.usage.prompt_tokens_details
                        output = chunk.usage.completion_tokens_details
                        usage = ModelUsage(
                            model=self._named(model),  # the name we price by; chunk.model may carry a date suffix
                            prompt_tokens=chunk.usage.prompt_tokens,
                            completion_tokens=chunk.usage.completion_tokens,
                            cached_tokens=(details.cached_tokens or 0) if details else 0,
                            reasoning_tokens=(output.reasoning_tokens or 0) if output else 0,
                        )
                    for choice in chunk.choices:
                        if choice.delta.content:
                            parts.append(choice.delta.content)
                            await sink(choice.delta.content)
                        for piece in choice.delta.tool_calls or ():
                            # The first delta of a call names its id and function; later ones add argument text.
                            call = calls.setdefault(piece.index, ["", ""])
                            if piece.id:
                                call[0] = piece.id
                            if piece.function is not None:
                                call[1] += piece.function.name or ""
                                call.append(piece.function.arguments or "")
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
        except openai.APITimeoutError as exc:
            error = translate_error(exc, self._named(model), self._setting(model), self._provider)
            # A read timeout came after the request was sent; only a connect timeout surely was not.
            if accepted or type(exc.__cause__).__name__ != "ConnectTimeout":
                error.after_sending()
            raise error from exc
        except openai.APIError as exc:
            if started:
                lost = ModelUnavailable("Lost the connection to the model mid-answer. Please try again.")
                raise lost.after_sending() from exc
            error = translate_error(exc, self._named(model), self._setting(model), self._provider)
            raise (error.after_sending() if accepted else error) from exc
        if finish_reason == "content_filter":
            refused = ContentRefused("The model's content filter stopped this reply. Try rephrasing your message.")
            raise refused.after_sending()
        if finish_reason is None:
            # The stream ended without a finish reason: the server closed it early.
            cut = ModelUnavailable("The model's reply was cut off by the server. Please try again.")
            raise cut.after_sending()
        made = tuple(ToolCall(c[0], c[1], "".join(c[2:])) for _, c in sorted(calls.items()))
        finish = FINISHES.get(finish_reason, Finish.DONE)
        return ChatResult(text="".join(parts), usage=usage, finish_reason=finish, tool_calls=made)

    def _named(self, model: str) -> str:
        """`model` as the bot's settings, prices and ledger name it: with its provider's prefix."""
        return f"{self._provider.name}/{model}" if self._provider and not self._provider.is_default else model

    def _setting(self, model: str) -> str:
        """The setting an admin changes when the server has no `model`."""
        if self._default_model is None or self._named(model) == self._default_model:
            return "CHAT_MODEL"
        return "ALLOWED_CHAT_MODELS (the channel's /model or a /prompt picks it)"


def merged_system(messages: Sequence[PromptMessage]) -> list[PromptMessage]:
    """The prompt with every system message joined into one at its start, for a server that takes only one.

    Fewer messages never count more tokens than several (each message's framing is gone), so what was reserved
    for the separate messages still covers the merged one.
    """
    system = [m.content for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    return [PromptMessage("system", "\n\n".join(system)), *rest] if system else list(messages)


def _wire(message: PromptMessage) -> ChatCompletionMessageParam:
    # A dict literal per role keeps mypy's TypedDict union checks honest.
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "tool":
        return {"role": "tool", "content": message.content, "tool_call_id": message.tool_call_id}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ],
        }
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    if message.images:
        parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": message.content}]
        parts.extend({"type": "image_url", "image_url": {"url": i.url, "detail": i.detail}} for i in message.images)
        return {"role": "user", "content": parts}
    return {"role": "user", "content": message.content}
