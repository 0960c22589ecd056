"""The price table: bot/data/prices.toml, with an operator's PRICES_FILE merged over it."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.billing.money import usd_to_nanos
from bot.errors import ConfigError, UserFacingError

SECTIONS = ("chat", "images", "audio", "embeddings", "speech")


class NoPrice(UserFacingError):
    """A model has no price, and the operator has not declared it free."""


@dataclass(frozen=True)
class ChatPrice:
    """Nano-dollars per token."""

    input: int
    output: int
    cached_input: int


class PriceTable:
    """Prices per model, in nano-dollars per unit. Unknown models are refused unless declared free."""

    def __init__(self, table: Mapping[str, Any], free_models: frozenset[str] = frozenset()) -> None:
        self._table = table
        self._free = free_models
        self._chat_prices: dict[str, ChatPrice] = {}

    @classmethod
    def load(cls, override: Path | None = None, free_models: frozenset[str] = frozenset()) -> PriceTable:
        """The packaged prices, with `override` (an operator's TOML file) merged over them."""
        table = tomllib.loads(resources.files("bot.data").joinpath("prices.toml").read_text("utf-8"))
        if override is not None:
            try:
                extra = tomllib.loads(override.read_text("utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"PRICES_FILE: cannot read {override}: {exc}") from None
            unknown = set(extra) - set(SECTIONS)
            if unknown:
                raise ConfigError(f"PRICES_FILE: unknown section(s) {sorted(unknown)}; use {list(SECTIONS)}")
            table = _merge(table, extra)
        prices = cls(table, free_models)
        prices._validate()
        return prices

    def is_free(self, model: str) -> bool:
        """True when the operator declared `model` free (self-hosted) and it has no price of its own: by its
        name, by its provider's (`ollama/*`: every model named `ollama/…`), or all (`*`)."""
        prefix, sep, _ = model.partition("/")
        return model in self._free or "*" in self._free or (bool(sep) and f"{prefix}/*" in self._free)

    def chat(self, model: str) -> ChatPrice:
        """Per-token prices of a chat model (parsed once per model: every call is priced twice)."""
        price = self._chat_prices.get(model)
        if price is None:
            price = self._chat_prices[model] = self._chat_price(model)
        return price

    def _chat_price(self, model: str) -> ChatPrice:
        entry = self._entry("chat", model)
        if entry is None:
            return ChatPrice(0, 0, 0)
        cached = entry.get("cached_input", entry["input"])
        return ChatPrice(_per_token(entry["input"]), _per_token(entry["output"]), _per_token(cached))

    def chat_cost(self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> int:
        """Nano-dollars for one chat call; cached input tokens at the cached rate."""
        price = self.chat(model)
        cached = min(cached_tokens, input_tokens)
        return (input_tokens - cached) * price.input + cached * price.cached_input + output_tokens * price.output

    def image_cost(self, model: str, quality: str, size: str, count: int = 1) -> int:
        """Nano-dollars for `count` images of one quality and size."""
        entry = self._entry("images", model)
        if entry is None:
            return 0
        try:
            return usd_to_nanos(entry[quality][size]) * count
        except KeyError:
            raise NoPrice(
                f"No price for {model} images at quality {quality!r}, size {size!r}: add it to PRICES_FILE."
            ) from None

    def audio_cost(self, model: str, seconds: float) -> int:
        """Nano-dollars for `seconds` of audio, rounded up."""
        entry = self._entry("audio", model)
        if entry is None:
            return 0
        return math.ceil(usd_to_nanos(entry["per_minute"]) * seconds / 60)

    def vision(self, model: str) -> Mapping[str, Any] | None:
        """How a chat model counts an image's tokens ([chat."<model>".vision]); None for a text-only model."""
        entry = self._table.get("chat", {}).get(model) or {}
        vision = entry.get("vision")
        return vision if isinstance(vision, Mapping) else None

    def speech_cost(self, model: str, *, chars: int, text_tokens: int, seconds: float) -> int:
        """Nano-dollars for speaking `chars` characters (`text_tokens` tokens) as `seconds` of audio."""
        entry = self._entry("speech", model)
        if entry is None:
            return 0
        cost = text_tokens * _per_token(entry.get("input", 0)) + chars * _per_token(entry.get("per_million_chars", 0))
        return cost + math.ceil(usd_to_nanos(entry.get("per_minute", 0)) * seconds / 60)

    def embedding_cost(self, model: str, tokens: int) -> int:
        """Nano-dollars for embedding `tokens` tokens."""
        entry = self._entry("embeddings", model)
        return 0 if entry is None else tokens * _per_token(entry["input"])

    def _entry(self, section: str, model: str) -> Mapping[str, Any] | None:
        entry = self._table.get(section, {}).get(model)
        if entry is not None:
            return entry  # type: ignore[no-any-return]
        if self.is_free(model):
            return None
        raise NoPrice(
            f"No price for model {model}: add it to PRICES_FILE (or, for a self-hosted model, to FREE_MODELS)."
        )

    def _validate(self) -> None:
        """Every price parses; a typo in PRICES_FILE fails at start-up, not on a user's call."""
        for section in SECTIONS:
            for model, entry in self._table.get(section, {}).items():
                try:
                    if section in ("chat", "embeddings"):
                        _per_token(entry["input"])
                        if section == "chat":
                            _per_token(entry["output"])
                            _per_token(entry.get("cached_input", entry["input"]))
                            _check_vision(entry.get("vision"))
                    elif section == "audio":
                        usd_to_nanos(entry["per_minute"])
                    elif section == "speech":
                        if not {"input", "per_minute", "per_million_chars"} & set(entry):
                            raise KeyError("input, per_minute or per_million_chars")
                        _per_token(entry.get("input", 0)), _per_token(entry.get("per_million_chars", 0))
                        usd_to_nanos(entry.get("per_minute", 0))
                    else:
                        for sizes in entry.values():
                            for price in sizes.values():
                                usd_to_nanos(price)
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    raise ConfigError(f"prices: bad entry {section}.{model!r}: {exc!r}") from None


def _check_vision(vision: Any) -> None:
    """A vision table counts by tiles (base, tile) or by patches (patches, multiplier)."""
    if vision is None:
        return
    if {"base", "tile"} <= set(vision):
        if not all(isinstance(vision[k], int) and vision[k] >= 0 for k in ("base", "tile")):
            raise ValueError("vision base and tile are whole numbers of tokens")
    elif {"patches", "multiplier"} <= set(vision):
        if not (isinstance(vision["patches"], int) and vision["patches"] > 0 and float(vision["multiplier"]) > 0):
            raise ValueError("vision patches is a positive whole number and multiplier a positive number")
    else:
        raise KeyError("vision needs base and tile, or patches and multiplier")


def _per_token(usd_per_million: Any) -> int:
    nanos_per_million = usd_to_nanos(usd_per_million)
    if nanos_per_million % 1_000_000:
        raise ValueError(f"{usd_per_million} per 1M tokens is finer than a nano-dollar per token")
    return nanos_per_million // 1_000_000


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
