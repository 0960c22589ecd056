"""Exact, offline token counting with the model's own encoding (bpe-openai embeds the vocabularies)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import bpe_openai

from bot.errors import ConfigError

log = logging.getLogger(__name__)

# Chat Completions adds a few tokens around each message and primes the reply; these are the
# figures from OpenAI's cookbook ("How to count tokens with tiktoken") for current models.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3

# Families bpe-openai's model table may not list yet; all current OpenAI chat models use o200k.
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


def encoding_name_for(model: str, override: str | None = None) -> str:
    """The encoding for a model: the operator's TOKEN_ENCODING, else bpe-openai's table, else its family."""
    if override:
        return override
    try:
        return str(bpe_openai.encoding_name_for_model(model))
    except KeyError:
        pass
    if model.startswith(_O200K_PREFIXES):
        return "o200k_base"
    log.warning("no known encoding for model %r; counting with o200k_base (set TOKEN_ENCODING)", model)
    return "o200k_base"


@functools.cache
def _encoding(name: str) -> Any:
    try:
        return bpe_openai.get_encoding(name)
    except Exception as exc:  # bpe-openai raises several types for an unknown name
        raise ConfigError(f"TOKEN_ENCODING: unknown encoding {name!r} ({exc})") from None


class TokenCounter:
    """Counts tokens of text and of chat messages for one encoding."""

    def __init__(self, encoding_name: str) -> None:
        self.encoding_name = encoding_name
        self._encoding = _encoding(encoding_name)

    @classmethod
    def for_model(cls, model: str, override: str | None = None) -> TokenCounter:
        """The counter for a model's encoding."""
        return cls(encoding_name_for(model, override))

    def count(self, text: str) -> int:
        """Tokens in `text`, treating special-token lookalikes as ordinary text (users may paste them)."""
        return len(self._encoding.encode_ordinary(text))

    def clip(self, text: str, max_tokens: int) -> str:
        """`text` cut to its first `max_tokens` tokens (whole when it fits)."""
        tokens = self._encoding.encode_ordinary(text)
        return text if len(tokens) <= max_tokens else str(self._encoding.decode(tokens[:max_tokens]))

    def count_message(self, text: str) -> int:
        """Tokens a chat message with this content costs in a prompt, framing included."""
        return self.count(text) + TOKENS_PER_MESSAGE
