"""Exact, offline token counting with the model's own encoding (bpe-openai's vocabularies, bot/providers/bpe.py).

An encoding is read on its first count, once per process (~0.4 s, ~25 MB): importing the bot or opening the
engine loads none. `warm` reads the chat model's in a thread, so the first message does not wait for it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading

from bot.errors import ConfigError
from bot.providers.bpe import BytePairEncoding
from bot.providers.encodings import ENCODINGS, MODEL_ENCODINGS

log = logging.getLogger(__name__)

# Chat Completions adds a few tokens around each message and primes the reply; these are the
# figures from OpenAI's cookbook ("How to count tokens with tiktoken") for current models.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3

# Families the model table may not list yet; all current OpenAI chat models use o200k.
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


def encoding_name_for(model: str, override: str | None = None) -> str:
    """The encoding for a model: the operator's TOKEN_ENCODING, else the model table, else its family."""
    if override:
        return override
    known = MODEL_ENCODINGS.get(model.lower())
    if known is not None:
        return known
    if model.startswith(_O200K_PREFIXES):
        return "o200k_base"
    log.warning("no known encoding for model %r; counting with o200k_base (set TOKEN_ENCODING)", model)
    return "o200k_base"


_building = threading.Lock()  # so that threads counting at once still build an encoding once


@functools.cache
def _built(name: str) -> BytePairEncoding:
    spec = ENCODINGS[name]
    return BytePairEncoding(spec.ranks(), spec.pattern)


def _encoding(name: str) -> BytePairEncoding:
    with _building:
        return _built(name)


class TokenCounter:
    """Counts tokens of text and of chat messages for one encoding (built on the first count)."""

    def __init__(self, encoding_name: str) -> None:
        if encoding_name not in ENCODINGS:
            known = ", ".join(sorted(ENCODINGS))
            raise ConfigError(f"TOKEN_ENCODING: unknown encoding {encoding_name!r} (known: {known})")
        self.encoding_name = encoding_name

    @classmethod
    def for_model(cls, model: str, override: str | None = None) -> TokenCounter:
        """The counter for a model's encoding."""
        return cls(encoding_name_for(model, override))

    def warm(self) -> None:
        """Read the encoding now (blocking; run it in a thread) rather than on the first count."""
        _encoding(self.encoding_name)

    def count(self, text: str) -> int:
        """Tokens in `text`, treating special-token lookalikes as ordinary text (users may paste them)."""
        return sum(1 for _ in _encoding(self.encoding_name).tokens(text))

    def clip(self, text: str, max_tokens: int) -> str:
        """`text` cut to its first `max_tokens` tokens (whole when it fits); a character cut in two becomes U+FFFD."""
        tokens = list(itertools.islice(_encoding(self.encoding_name).tokens(text), max_tokens + 1))
        return text if len(tokens) <= max_tokens else b"".join(tokens[:max_tokens]).decode(errors="replace")

    def count_message(self, text: str) -> int:
        """Tokens a chat message with this content costs in a prompt, framing included."""
        return self.count(text) + TOKENS_PER_MESSAGE
