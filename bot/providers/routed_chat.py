"""The chat model the engine calls: each call goes to the provider its model's name routes to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openai.types.chat import ChatCompletionToolParam

from bot.providers.llm import ChatModel, ChatResult, Effort, PromptMessage, TextSink
from bot.providers.registry import Providers


class RoutedChat:
    """A ChatModel over one ChatModel per provider: `ollama/llama3.1:8b` is sent as `llama3.1:8b` to the
    provider ollama's; a name no provider prefixes, whole to the default provider's."""

    def __init__(self, providers: Providers, chats: Mapping[str, ChatModel]) -> None:
        self._providers = providers
        self._chats = chats  # by provider name

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
        """One reply from the provider `model` names (its usage under the full name, as it is priced)."""
        provider, name = self._providers.route(model)
        return await self._chats[provider.name].chat(
            messages,
            model=name,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            on_text=on_text,
            tools=tools,
            reasoning_effort=reasoning_effort,
        )
