"""Assembling what is sent to the model: the system prompt, always, then the history window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.providers.llm import PromptImage, PromptMessage
from storage import WindowMessage
from storage.memory_records import MemoryHit

RECALL_HEADER = (
    "Recalled from earlier in this conversation (older messages that may be relevant; the latest ones follow):"
)


def build_prompt(
    system_prompt: str,
    history: Sequence[WindowMessage],
    recalled: str | None = None,
    images: Mapping[int, tuple[PromptImage, ...]] | None = None,
) -> list[PromptMessage]:
    """The system prompt first, then any recalled older messages, then the window oldest first.

    `images` are the images of the window's messages, by message id.
    """
    prompt = [PromptMessage("system", system_prompt)] if system_prompt else []
    if recalled:
        prompt.append(PromptMessage("system", recalled))
    if images:
        prompt += [PromptMessage(m.role, m.content, images.get(m.id, ())) for m in history]
    else:
        prompt += [PromptMessage(m.role, m.content) for m in history]
    return prompt


def recalled_block(hits: Sequence[MemoryHit]) -> str:
    """Older messages brought back by recall, marked as such, oldest first."""
    lines = [RECALL_HEADER]
    for hit in hits:
        who = hit.author_name or hit.role
        lines.append(f"[{hit.created_at:%Y-%m-%d %H:%M}] {who}: {hit.content}")
    return "\n".join(lines)
