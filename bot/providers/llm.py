"""What the engine sends a chat model and gets back, whichever provider runs it (bot/providers/openai_chat.py
speaks it to OpenAI-compatible servers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, NamedTuple, Protocol, Required, TypedDict

from openai.types.chat import ChatCompletionToolParam

from storage import ModelUsage

TextSink = Callable[[str], Awaitable[None]]
# How long a reasoning model thinks (its reasoning tokens count in completion_tokens, within the output budget).
Effort = Literal["low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")


class PromptImage(NamedTuple):
    """An image sent beside a user message's text, as a data URL (never a platform's private link)."""

    url: str
    detail: Literal["low", "high", "auto"] = "auto"
    tokens: int = 0  # the model's count for it (bot/media/vision.py), for the worst case reserved


def effort(value: str | None) -> Effort | None:
    """A stored reasoning effort as the API takes it (None, or anything unknown: the model's default)."""
    return next((e for e in EFFORTS if e == value), None)


class ToolCall(NamedTuple):
    """A function the model asked to run: the call's id, the function's name and its JSON arguments (as sent)."""

    id: str
    name: str
    arguments: str


class PromptMessage(NamedTuple):
    """One message of a prompt sent to the model (a tuple: prompts can hold hundreds).

    An assistant message may carry the `tool_calls` it made; a "tool" message is the result of the call
    named by `tool_call_id`.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    images: tuple[PromptImage, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""


class Finish(Enum):
    """Why a reply ended, in our words (each provider maps its own; a filtered reply is raised as ContentRefused)."""

    DONE = "done"
    OUTPUT_LIMIT = "output_limit"  # stopped at max_output_tokens: the user may say "continue"
    TOOL_CALLS = "tool_calls"  # the model asks for functions to be run


@dataclass(frozen=True)
class ChatResult:
    """A complete reply. `usage` is None only when the server did not report it."""

    text: str
    usage: ModelUsage | None
    finish_reason: Finish | None
    tool_calls: tuple[ToolCall, ...] = ()


class ChatOptions(TypedDict, total=False):
    """`ChatModel.chat`'s keyword options besides the model, for a model that passes them on or ignores them."""

    max_output_tokens: Required[int]
    temperature: float | None
    on_text: TextSink | None
    tools: Sequence[ChatCompletionToolParam]
    reasoning_effort: Effort | None


class ChatModel(Protocol):
    """Anything that turns a prompt into a (streamed) reply."""

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
        """Run one chat completion, passing each piece of text to `on_text` as it arrives; `tools` are
        the functions the model may ask for (none: it answers in text)."""
