"""Assembling what is sent to the model: the system prompt, always, then the history window."""

from __future__ import annotations

from collections.abc import Sequence

from bot.llm import PromptMessage
from storage import WindowMessage


def build_prompt(system_prompt: str, history: Sequence[WindowMessage]) -> list[PromptMessage]:
    """The system prompt first, then the stored messages oldest first."""
    prompt = [PromptMessage("system", system_prompt)] if system_prompt else []
    prompt.extend(PromptMessage(role, content) for role, content, _ in history)
    return prompt
