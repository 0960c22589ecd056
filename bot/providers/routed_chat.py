"""The chat model the engine calls: each call goes to the provider its model's name routes to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Unpack

from bot.providers.llm import ChatModel, ChatOptions, ChatResult, PromptMessage
from bot.providers.registry import Providers


class RoutedChat:
    """A ChatModel over one ChatModel per provider: `ollama/llama3.1:8b` is sent as `llama3.1:8b` to the
    provider ollama's; a name no provider prefixes, whole to the default provider's."""

    def __init__(self, providers: Providers, chats: Mapping[str, ChatModel]) -> None:
        self._providers = providers
        self._chats = chats  # by provider name

    async def chat(
        self, messages: Sequence[PromptMessage], *, model: str, **options: Unpack[ChatOptions]
    ) -> ChatResult:
        """One reply from the provider `model` names (its usage under the full name, as it is priced)."""
        provider, name = self._providers.route(model)
        return await self._chats[provider.name].chat(messages, model=name, **options)
