"""A chat turn with tools: the model may call functions, up to TOOL_MAX_STEPS model calls in all.

Each step is one metered call (`MeteredChat.stream`, so `Budget.metered`): its worst case, the prompt
so far plus the whole output budget, is reserved before it is sent and settled after. A step whose worst
case does not fit the budget is refused, never sent with less; the person then gets what was found so far
and the refusal's figures. The last step offers no tools, so the turn always ends in an answer; when it
was the step limit that ended the searching, the answer says so.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from openai.types.chat import ChatCompletionToolParam

from bot.billing.budget import Budget, QuotaExceeded
from bot.billing.metering import Cell, Completion, Early, Keeper, MeteredChat
from bot.billing.money import format_usd
from bot.chat.replies import stream_reply
from bot.providers.llm import PromptMessage
from bot.providers.tokens import TokenCounter
from bot.settings import Settings
from bot.tools.builtin import BuiltinTools
from bot.tools.registry import (
    QUOTE_CLOSE,
    QUOTING_RULE,
    Approval,
    Outcome,
    Tool,
    ToolRegistry,
    ToolSource,
    ToolUse,
)
from bot.wording import count
from storage.ledger_records import Charge

# Stores what a step's tools found with the conversation, so a follow-up sees it.
Recorder = Callable[[str], Awaitable[None]]
LAST_STEP = "No more tool calls are possible in this turn: answer now from what was found above."
MIN_RESULT_TOKENS = 50
OFFERS_REMEMBERED = 64  # sets of tools whose offer is kept (channels differ by their MCP servers)


@dataclass(frozen=True)
class Offer:
    """The tools a turn offers where its message was said, and the tokens they add to its first step's prompt
    (the quoting rule and their definitions): known before the turn's writes, so its reservation can go with them."""

    tools: tuple[Tool, ...] = ()
    specs: tuple[ChatCompletionToolParam, ...] = ()
    tokens: int = 0


def tool_loop(
    settings: Settings,
    chat: MeteredChat,
    tokens: TokenCounter,
    budget: Budget,
    sources: Sequence[ToolSource] = (),
    approval: Approval | None = None,
) -> ToolLoop:
    """The loop over the built-in tools the settings switch on (searches metered by `budget`), and any other
    sources (the MCP servers')."""
    return ToolLoop(
        chat,
        ToolRegistry([BuiltinTools(settings, budget), *sources], approval),
        tokens,
        max_steps=settings.tool_max_steps,
        input_budget=settings.input_token_budget,
        result_tokens=settings.tool_result_tokens,
    )


class ToolLoop:
    """Runs a turn's model calls and tool calls, each call metered."""

    def __init__(
        self,
        chat: MeteredChat,
        registry: ToolRegistry,
        tokens: TokenCounter,
        *,
        max_steps: int,
        input_budget: int,
        result_tokens: int,
    ) -> None:
        self._chat = chat
        self._registry = registry
        self._tokens = tokens
        self.max_steps = max_steps
        self._input_budget = input_budget
        self._result_tokens = result_tokens
        self._offers: dict[tuple[str, ...], Offer] = {}  # by the offered tools' names (the registry's are fixed)

    @property
    def enabled(self) -> bool:
        """Whether a turn offers tools at all (some tool is on, and a step is left to answer after one)."""
        return self._registry.enabled and self.max_steps > 1

    async def offer(self, use: ToolUse) -> Offer:
        """The tools on where `use`'s message was said, and what they add to the first step's prompt."""
        offered = tuple(await self._registry.offered(use))
        if not offered:
            return Offer()
        names = tuple(t.name for t in offered)
        offer = self._offers.get(names)
        if offer is None:
            offer = self._priced(offered)
            if len(self._offers) < OFFERS_REMEMBERED:
                self._offers[names] = offer
        return offer

    async def run(
        self,
        cell: Cell,
        charge: Charge,
        use: ToolUse,
        *,
        keep: Keeper | None = None,
        record: Recorder | None = None,
        offer: Offer | None = None,
        early: Early | None = None,
    ) -> Completion:
        """Run the turn: model steps and tool calls until the model answers in text or the last step.

        `keep` stores the final answer with its settlement; `record` stores each step's calls and results.
        Raises QuotaExceeded (with what was found so far) when a step's worst case does not fit.
        `offer`: the tools offered, when the caller asked first (`offer`); `early`: the first step's slot and
        reservation, taken by the caller (see MeteredChat.stream).
        """
        offer = offer or await self.offer(use)
        if not offer.tools:  # none is on here (an MCP server off in this channel, no built-in one): a plain reply
            return await stream_reply(self._chat, cell, charge, use.responder, keep=keep, early=early)
        specs = offer.specs
        prompt = _with_rule(cell.prompt)
        prompt_tokens = cell.prompt_tokens + offer.tokens
        found: list[str] = []
        spent = 0
        for step in range(1, self.max_steps + 1):
            last = step == self.max_steps
            if last and step > 1:
                prompt.append(PromptMessage("system", LAST_STEP))
                prompt_tokens += self._tokens.count_message(LAST_STEP)
            step_cell = replace(cell, prompt=list(prompt), prompt_tokens=prompt_tokens, tools=() if last else specs)
            try:
                completion = await stream_reply(
                    self._chat,
                    step_cell,
                    charge,
                    use.responder,
                    keep=keep,
                    lazy=True,
                    early=early if step == 1 else None,
                )
            except QuotaExceeded as exc:
                if step == 1:
                    raise
                raise QuotaExceeded(stopped(found, step - 1, spent, exc.message)) from exc
            spent += completion.cost_nanos
            if not completion.tool_calls:
                if last and step > 1:
                    await use.responder.send_text(
                        f"(I stopped using tools after {count(self.max_steps, 'model call')}, this bot's limit per "
                        f"message (TOOL_MAX_STEPS); the answer uses what was found so far, for {format_usd(spent)}.)"
                    )
                return completion
            outcomes = [await self._registry.call(call, use) for call in completion.tool_calls]
            texts = self._fit(outcomes, prompt_tokens)
            prompt.append(PromptMessage("assistant", completion.text, tool_calls=completion.tool_calls))
            prompt.extend(
                PromptMessage("tool", text, tool_call_id=o.call.id) for o, text in zip(outcomes, texts, strict=True)
            )
            prompt_tokens += self._tokens.count_message(completion.text) + sum(
                self._tokens.count_message(c.name + c.arguments) for c in completion.tool_calls
            )
            prompt_tokens += sum(self._tokens.count_message(text) for text in texts)
            found.extend(label for o in outcomes for label in o.found)
            if record is not None:
                await record(record_text(outcomes, texts))
        raise AssertionError("the last step offers no tools, so it ends the loop")  # pragma: no cover

    def _priced(self, offered: tuple[Tool, ...]) -> Offer:
        """`offered` with their definitions and what offering them adds to a prompt: the quoting rule and the
        definitions. Worked out once for each set of tools (a channel offers the same few, turn after turn)."""
        specs = self._registry.specs(offered)
        tokens = self._tokens.count_message(QUOTING_RULE) + self._tokens.count(json.dumps(specs))
        return Offer(offered, specs, tokens)

    def _fit(self, outcomes: Sequence[Outcome], prompt_tokens: int) -> list[str]:
        """Each result cut to its share of the context left (and RESULT_TOKENS), its quote marks kept."""
        room = self._input_budget - prompt_tokens - self._chat.max_output_tokens // 4  # room for the calls too
        share = min(self._result_tokens, room // max(1, len(outcomes)))
        return [self._cut(o.text, share) for o in outcomes]

    def _cut(self, text: str, limit: int) -> str:
        if limit < MIN_RESULT_TOKENS:
            return "error: no room is left in the conversation's context for this result"
        if self._tokens.count(text) <= limit:
            return text
        text = text[: limit * 3]  # cutting by characters at ~3 per token, then checking, keeps this linear
        while self._tokens.count(text) > limit - 20:
            text = text[: int(len(text) * 0.9)]
        return f"{text}\n[…cut to fit the context]\n{QUOTE_CLOSE}" if not text.startswith("error:") else text


def _with_rule(prompt: Sequence[PromptMessage]) -> list[PromptMessage]:
    """The prompt with the quoting rule after its leading system messages."""
    at = next((i for i, m in enumerate(prompt) if m.role != "system"), len(prompt))
    return [*prompt[:at], PromptMessage("system", QUOTING_RULE), *prompt[at:]]


def record_text(outcomes: Sequence[Outcome], texts: Sequence[str]) -> str:
    """What a step's tool calls found, as kept in the conversation for follow-ups."""
    parts = ["Tools I used for the next answer, and what they returned:"]
    parts += [f"{o.call.name}({o.call.arguments}):\n{text}" for o, text in zip(outcomes, texts, strict=True)]
    return "\n\n".join(parts)


def stopped(found: Sequence[str], steps: int, spent: int, reason: str) -> str:
    """What a person is told when the budget ended the turn before its answer."""
    lines = [f"I stopped after {count(steps, 'model call')} ({format_usd(spent)}), before writing an answer: {reason}"]
    if found:
        lines.append("What I had found so far:")
        lines += [f"• {label}" for label in dict.fromkeys(found)]
    return "\n".join(lines)
