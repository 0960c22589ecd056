"""The model providers: the default one (OPENAI_BASE_URL, OPENAI_API_KEY) and those PROVIDERS names.

A model named `provider/model` runs on that provider, which is sent `model`; any other name (including
`meta-llama/Llama-3.1-8B` or LiteLLM's `openai/gpt-4.1` when no provider has that prefix) is sent whole to
the default provider. Prices, quotas and the ledger always see the full name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from pydantic import SecretStr

from bot.errors import ConfigError
from bot.providers.kinds import DEFAULT_KIND, OPENAI_COMPATIBLE, ProviderKind, kind_named

if TYPE_CHECKING:
    from bot.settings import Settings

DEFAULT_PROVIDER = "openai"
# A provider's name is the prefix of its models' names: lower case, so `Ollama/x` is not silently another name.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
KEY_VARIABLE = re.compile(r"^PROVIDER_([A-Z0-9_]+)_API_KEY$", re.IGNORECASE)
KIND_VARIABLE = re.compile(r"^PROVIDER_([A-Z0-9_]+)_KIND$", re.IGNORECASE)


@dataclass(frozen=True)
class Provider:
    """One server models run on: its name (the models' prefix), base URL and key (never shown)."""

    name: str
    base_url: str | None
    api_key: SecretStr | None = field(default=None, repr=False)
    kind: ProviderKind = OPENAI_COMPATIBLE

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_PROVIDER

    @property
    def key_setting(self) -> str:
        """The setting an admin sets this provider's key in."""
        return "OPENAI_API_KEY" if self.is_default else key_variable(self.name)

    @property
    def url_setting(self) -> str:
        """The setting an admin points this provider at its server in."""
        return "OPENAI_BASE_URL" if self.is_default else f"PROVIDERS (its {self.name}= entry)"


class Route(NamedTuple):
    """Where a model name goes: the provider, and the name it is sent under there."""

    provider: Provider
    model: str


def key_variable(name: str) -> str:
    """The environment variable holding provider `name`'s key: PROVIDER_<NAME>_API_KEY (`-` as `_`)."""
    return f"PROVIDER_{name.upper().replace('-', '_')}_API_KEY"


def kind_variable(name: str) -> str:
    """The environment variable naming provider `name`'s kind: PROVIDER_<NAME>_KIND (`-` as `_`)."""
    return f"PROVIDER_{name.upper().replace('-', '_')}_KIND"


def parse_providers(text: str) -> list[tuple[str, str]]:
    """PROVIDERS (`name=base_url,…`) as (name, base_url) pairs; a ValueError names the bad entry."""
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not name:
            raise ValueError(f"{entry!r} is not name=base_url, e.g. ollama=http://localhost:11434/v1")
        if not _NAME.match(name):
            raise ValueError(
                f"provider name {name!r}: use lower-case letters, digits, - and _ (it is the prefix of its models'"
                " names, as in ollama/llama3.1:8b)"
            )
        if name == DEFAULT_PROVIDER:
            raise ValueError(
                f"{DEFAULT_PROVIDER!r} is the default provider's name (OPENAI_BASE_URL, OPENAI_API_KEY); "
                "give this one another name"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The URL itself is not repeated: it may carry a user:password part.
            raise ValueError(f"provider {name!r}: its base URL must be an http:// or https:// URL with a host")
        variable = key_variable(name)
        if variable in seen:
            also = "" if seen[variable] == name else f" (as {seen[variable]!r} too: both keys would be {variable})"
            raise ValueError(f"provider {name!r} is named twice{also}")
        seen[variable] = name
        pairs.append((name, url))
    return pairs


def check_keys(pairs: Iterable[tuple[str, str]], keys: Mapping[str, object]) -> None:
    """Every PROVIDER_<NAME>_API_KEY set belongs to a provider PROVIDERS names (a typo is not silently unused)."""
    _check_claimed(pairs, keys, key_variable, "OPENAI_API_KEY")


def check_kinds(pairs: Iterable[tuple[str, str]], kinds: Mapping[str, str]) -> None:
    """Every PROVIDER_<NAME>_KIND set belongs to a provider PROVIDERS names and names a kind there is."""
    _check_claimed(pairs, kinds, kind_variable, "OPENAI_KIND")
    for variable in sorted(kinds):
        try:
            kind_named(kinds[variable])
        except ValueError as exc:
            raise ValueError(f"{variable}: {exc}") from None


def _check_claimed(
    pairs: Iterable[tuple[str, str]], variables: Iterable[str], variable_of: Callable[[str], str], default: str
) -> None:
    """A ValueError naming the first of `variables` that no provider of `pairs` claims (never its value);
    `default` is the default provider's setting for the same thing."""
    named = {variable_of(name) for name, _ in pairs}
    for variable in sorted(variables):
        if variable not in named:
            hint = f" (the default provider's is {default})" if variable == variable_of(DEFAULT_PROVIDER) else ""
            raise ValueError(f"{variable} is set, but PROVIDERS names no provider it belongs to{hint}")


class Providers:
    """The configured providers, and the one rule that routes a model name to one of them."""

    def __init__(self, default: Provider, others: Iterable[Provider] = ()) -> None:
        self.default = default
        self._by_name = {p.name: p for p in others}

    @classmethod
    def from_settings(cls, settings: Settings) -> Providers:
        """The default provider and those PROVIDERS names, each with its key and kind."""
        keys, kinds = settings.provider_api_keys, settings.provider_kinds
        others = [
            Provider(name, url, keys.get(key_variable(name)), kind_named(kinds.get(kind_variable(name), DEFAULT_KIND)))
            for name, url in parse_providers(settings.providers)
        ]
        default = Provider(
            DEFAULT_PROVIDER, settings.openai_base_url, settings.openai_api_key, kind_named(settings.openai_kind)
        )
        return cls(default, others)

    def all(self) -> list[Provider]:
        """The default provider first, then the others as PROVIDERS lists them."""
        return [self.default, *self._by_name.values()]

    @property
    def several(self) -> bool:
        """Whether PROVIDERS adds any (then what users see names the provider of each model)."""
        return bool(self._by_name)

    def shown(self, name: str) -> str:
        """A model's name as users see it: with the provider it runs on when there are several."""
        return f"{name} (on {self.route(name).provider.name})" if self.several else name

    def route(self, name: str) -> Route:
        """The provider a model name runs on and what it is sent as there."""
        prefix, sep, rest = name.partition("/")
        provider = self._by_name.get(prefix) if sep and rest else None
        return Route(provider, rest) if provider is not None else Route(self.default, name)

    def named_by(self, name: str) -> Provider | None:
        """The non-default provider a model name's prefix names, or None."""
        provider = self.route(name).provider
        return None if provider.is_default else provider

    def refuse_elsewhere(self, settings: Mapping[str, str]) -> None:
        """ConfigError when one of `settings` ({SETTING: model}) names a model on another provider than the
        default: images, speech, transcription and embeddings run on the default provider only."""
        for setting, model in settings.items():
            provider = self.named_by(model)
            if provider is not None:
                raise ConfigError(
                    f"{setting}: {model!r} names provider {provider.name!r}, but only chat models may run on the "
                    "providers PROVIDERS adds; this one runs on the default provider (OPENAI_BASE_URL)."
                )
