"""The kinds of model server a provider may be: what each accepts beyond the common subset of Chat Completions.

An operator names a provider's kind in OPENAI_KIND (the default provider) or PROVIDER_<NAME>_KIND; another kind
of server is one more entry here (and, where it speaks another protocol, one more module beside openai_chat.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProviderKind:
    """How a kind of server speaks: what the engine may send it beyond the common subset."""

    name: str
    # Several system messages (the persona, recalled messages, the tools' rules): some chat templates refuse
    # any but a first one ("System message must be at the beginning"); those get them merged into one.
    accepts_second_system_message: bool = True
    # What an operator reads when a kind setting names no kind.
    described: str = field(default="", compare=False)


OPENAI_COMPATIBLE = ProviderKind("openai", described="the default: any OpenAI-compatible server")
# Qwen3.5/3.6 chat templates raise "System message must be at the beginning." for any system message but the
# first, and Gemma 3 and Mistral ones "Conversation roles must alternate user/assistant/…" (vLLM answers 400,
# llama.cpp's server 500): both take one optional system message, first.
SINGLE_SYSTEM = ProviderKind(
    "single-system",
    accepts_second_system_message=False,
    described="a chat template that takes one system message, first: the bot merges its system messages into one",
)

KINDS = {kind.name: kind for kind in (OPENAI_COMPATIBLE, SINGLE_SYSTEM)}
DEFAULT_KIND = OPENAI_COMPATIBLE.name


def kind_named(value: str) -> ProviderKind:
    """The kind a setting names (case and surrounding spaces aside); a ValueError lists the kinds there are.

    The value is not repeated in the error: a key pasted into the wrong variable must not reach the log.
    """
    kind = KINDS.get(value.strip().lower())
    if kind is None:
        known = "; ".join(f"{k.name} ({k.described})" for k in KINDS.values())
        raise ValueError(f"names no provider kind; the kinds are: {known}")
    return kind
