"""Model calls held to budgets: reserve the worst case, call, settle to the reported usage.

Chat turns, /ask and prompt runs stream one reply; a prompt comparison runs a grid of calls under
one reservation. A call the provider refused is released and charges nothing; one it ran and then
failed (a cut stream, a read timeout, an empty or filtered reply, a shutdown mid-answer) is charged
the prompt plus the output received, counted with the model's tokenizer: the provider bills those.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from openai.types.chat import ChatCompletionToolParam

from bot.billing.budget import Budget, Reservation
from bot.billing.prices import PriceTable
from bot.errors import ModelError, ModelUnavailable
from bot.providers.llm import ChatModel, ChatResult, Effort, Finish, PromptMessage, TextSink, ToolCall
from bot.providers.tokens import TOKENS_PER_REPLY, TokenCounter
from storage import ModelUsage
from storage.ledger_records import Charge, ReservationRequest, Settlement, Units


@dataclass(frozen=True)
class Completion:
    """A finished call: the reply, its usage (reported, or counted when the server gave none), cost, time.

    `error` is set for a call the provider ran but that failed: `text` is what was received and
    `usage`/`cost_nanos` what it is charged.
    """

    text: str
    usage: ModelUsage
    finish_reason: Finish | None
    cost_nanos: int
    latency_ms: int
    error: ModelError | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Cell:
    """One call of a grid: its prompt, exact prompt size, model and temperature."""

    prompt: list[PromptMessage]
    prompt_tokens: int
    model: str
    temperature: float | None = None
    tools: tuple[ChatCompletionToolParam, ...] = ()  # functions offered (their definitions are in prompt_tokens)
    reasoning_effort: Effort | None = None


# Stores a completion with its settlement in one transaction; False when the call's hold had been lost.
Keeper = Callable[[Completion, Settlement], Awaitable[bool]]


@dataclass
class Early:
    """A call whose model slot was taken before its caller's writes, so that its reservation can be written
    with them (a chat turn's, see `Store.open_turn`): `request` makes that reservation, `reserved` is its id
    once written. The first `MeteredChat.stream` given it holds the reservation from then on, if it is
    for that very call's worst case (else it is given back and the call reserves its own), and lets the
    slot go when it ends; a reservation never taken up is given back."""

    chat: MeteredChat
    reserved: int | None = None
    worst: tuple[Units, int] | None = None  # what `request` reserved: the call's worst units and cost
    adopted: bool = False
    _slot: asyncio.Semaphore | None = None

    def request(self, charge: Charge, model: str, prompt_tokens: int) -> ReservationRequest:
        """The reservation of a call of `model` on a prompt of `prompt_tokens` (pure, see `Budget.request`)."""
        self.worst = self.chat._worst_of(Cell([], prompt_tokens, model))
        return self.chat._budget.request(charge, *self.worst)

    def free_slot(self) -> None:
        """Let the model slot go (once)."""
        if self._slot is not None:
            self._slot.release()
            self._slot = None


class MeteredChat:
    """The one way the engine calls a chat model."""

    def __init__(
        self,
        model: ChatModel,
        *,
        prices: PriceTable,
        budget: Budget,
        tokens: TokenCounter,
        max_output_tokens: int,
        max_in_flight: int,
    ) -> None:
        self._model = model
        self._prices = prices
        self._budget = budget
        self._tokens = tokens
        self.max_output_tokens = max_output_tokens
        # Bounds model calls in flight in this process; more wait their turn.
        self._in_flight = asyncio.Semaphore(max_in_flight)

    def prompt_tokens(self, prompt: Sequence[PromptMessage]) -> int:
        """Exact size of a prompt as the API counts it (use stored counts instead where you have them)."""
        counted = sum(self._tokens.count_message(m.content) + sum(i.tokens for i in m.images) for m in prompt)
        return counted + TOKENS_PER_REPLY

    def worst_cost(self, cell: Cell) -> int:
        """The most this call can cost: the whole prompt plus the whole output budget."""
        return self._prices.chat_cost(cell.model, cell.prompt_tokens, self.max_output_tokens)

    @asynccontextmanager
    async def early(self) -> AsyncIterator[Early]:
        """Take one of the process's model slots for a call whose reservation its caller writes (see `Early`);
        a reservation written but never taken up by `stream` (the turn failed first) is given back."""
        await self._in_flight.acquire()
        early = Early(self, _slot=self._in_flight)
        try:
            yield early
        finally:
            early.free_slot()
            if early.reserved is not None and not early.adopted:
                await asyncio.shield(self._budget.ledger.release(early.reserved, self._budget.now()))

    def _worst_of(self, cell: Cell) -> tuple[Units, int]:
        return Units(input_tokens=cell.prompt_tokens, output_tokens=self.max_output_tokens), self.worst_cost(cell)

    async def stream(
        self,
        cell: Cell,
        charge: Charge,
        on_text: TextSink | None = None,
        *,
        keep: Keeper | None = None,
        early: Early | None = None,
    ) -> Completion:
        """One metered call, its text streamed to `on_text` as it comes; raises the error of a failed call
        (after charging what the provider ran of it). Showing the reply is the caller's.

        `keep` stores a successful completion together with its settlement, in one transaction (a chat
        turn's reply in history); it returns False when the call's hold had been lost. `early`: the slot is
        the caller's, and the reservation too when written (`Early.reserved`, made by `Early.request` for
        this very cell's model and prompt size).
        """
        worst, cost = self._worst_of(cell)
        if early is None:
            return await self._stream(cell, charge, on_text, keep, worst, cost, slot=self._in_flight)
        reserved, early.adopted = early.reserved, True
        if reserved is not None and early.worst != (worst, cost):  # reserved for another call: never below this one
            await self._budget.ledger.release(reserved, self._budget.now())
            reserved = None
        try:
            return await self._stream(cell, charge, on_text, keep, worst, cost, reserved=reserved)
        finally:
            early.free_slot()

    async def _stream(
        self,
        cell: Cell,
        charge: Charge,
        on_text: TextSink | None,
        keep: Keeper | None,
        worst: Units,
        cost: int,
        *,
        slot: asyncio.Semaphore | None = None,
        reserved: int | None = None,
    ) -> Completion:
        async with self._budget.metered(charge, worst, cost, slot=slot, reserved=reserved) as reservation:
            completion = await self._call(cell, on_text, reservation)
            units = _units(completion.usage)
            if keep is not None and completion.error is None and not completion.tool_calls:  # a reply, not a step
                done = completion

                async def along(settlement: Settlement) -> bool:
                    return await keep(done, settlement)

                await reservation.settle(units, completion.cost_nanos, along=along)
            else:
                await reservation.settle(units, completion.cost_nanos)
        if completion.error is not None:
            raise completion.error
        return completion

    async def grid(self, cells: Sequence[Cell], charge: Charge) -> list[Completion | ModelError]:
        """Run every cell under ONE reservation of their summed worst case; settle to the summed real cost.

        A failing cell is returned as its error and costs what the provider ran of it; the others are kept.
        The cells take the process's model slots one by one, so the reservation is marked sent from the
        start (a crash while they wait is charged as if they ran).
        """
        async with self._budget.metered(
            charge, self._worst(cells), sum(self.worst_cost(c) for c in cells)
        ) as reservation:
            calls = (self._slotted(cell, reservation) for cell in cells)
            results = await asyncio.gather(*calls, return_exceptions=True)
            done = [r for r in results if isinstance(r, Completion)]
            outcomes: list[Completion | ModelError] = []
            for result in results:
                if isinstance(result, Completion) and result.error is not None:
                    outcomes.append(result.error)
                elif isinstance(result, Completion | ModelError):
                    outcomes.append(result)
                else:
                    # A bug or a cancellation, not a model failure: the calls that ran are charged on exit.
                    for completion in done:
                        reservation.note_spent(_units(completion.usage), completion.cost_nanos)
                    raise result
            await reservation.settle(_summed(done), sum(c.cost_nanos for c in done))
        return outcomes

    @asynccontextmanager
    async def plan(self, worst: Sequence[Cell], charge: Charge) -> AsyncIterator[Plan]:
        """Calls made one after another (each may depend on the last) under ONE reservation of `worst`, the
        worst case of every call the plan may make (their prompts need only their sizes). Settled to the
        summed real cost; a failure or cancellation charges the calls that ran. Refused (QuotaExceeded)
        before any call when the whole plan does not fit.
        """
        async with self._budget.metered(charge, self._worst(worst), sum(self.worst_cost(c) for c in worst)) as held:
            plan = Plan(self, held)
            try:
                yield plan
            except BaseException:
                for completion in plan.done:
                    held.note_spent(_units(completion.usage), completion.cost_nanos)
                raise
            await held.settle(_summed(plan.done), sum(c.cost_nanos for c in plan.done))

    def _worst(self, cells: Sequence[Cell]) -> Units:
        return Units(
            input_tokens=sum(c.prompt_tokens for c in cells), output_tokens=self.max_output_tokens * len(cells)
        )

    async def _slotted(self, cell: Cell, reservation: Reservation) -> Completion:
        async with self._in_flight:
            return await self._call(cell, None, reservation)

    async def _call(self, cell: Cell, on_text: TextSink | None, reservation: Reservation) -> Completion:
        """One model call: its completion, or (when the provider ran it and it failed) what it is charged.

        A failure the provider refused before running the call is raised, and costs nothing.
        """
        started = time.perf_counter()
        received: list[str] = []

        async def sink(text: str) -> None:
            received.append(text)
            if on_text is not None:
                await on_text(text)

        try:
            result: ChatResult = await self._model.chat(
                cell.prompt,
                model=cell.model,
                max_output_tokens=self.max_output_tokens,
                temperature=cell.temperature,
                on_text=sink,
                tools=cell.tools,
                reasoning_effort=cell.reasoning_effort,
            )
        except ModelError as exc:
            if not exc.sent:
                raise
            return self._completion(cell, "".join(received), None, None, started, exc)
        except asyncio.CancelledError:
            # Cut short (a shutdown) while the provider runs it: charge what came back on the way out.
            cut = self._completion(cell, "".join(received), None, None, started, None)
            reservation.note_spent(_units(cut.usage), cut.cost_nanos)
            raise
        error = None
        if not result.text.strip() and not result.tool_calls:
            error = ModelUnavailable("The model returned an empty reply. Please try again.")
        return self._completion(
            cell, result.text, result.usage, result.finish_reason, started, error, tool_calls=result.tool_calls
        )

    def _completion(
        self,
        cell: Cell,
        text: str,
        usage: ModelUsage | None,
        finish_reason: Finish | None,
        started: float,
        error: ModelError | None,
        *,
        tool_calls: tuple[ToolCall, ...] = (),
    ) -> Completion:
        # Some OpenAI-compatible servers do not report streamed usage, and a failed call has none:
        # then the prompt's exact size and the output received, counted with the model's tokenizer.
        usage = usage or ModelUsage(cell.model, cell.prompt_tokens, self._tokens.count(text))
        cost = self._prices.chat_cost(cell.model, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        latency = int((time.perf_counter() - started) * 1000)
        return Completion(text, usage, finish_reason, cost, latency, error, tool_calls)


@dataclass
class Plan:
    """The calls of one MeteredChat.plan, run in turn; `done` is what they cost so far."""

    chat: MeteredChat
    reservation: Reservation
    done: list[Completion] = field(default_factory=list)

    async def run(self, cell: Cell) -> str:
        """One call's reply; raises its error (what the provider ran of it is charged with the plan)."""
        completion = await self.chat._slotted(cell, self.reservation)
        self.done.append(completion)
        if completion.error is not None:
            raise completion.error
        return completion.text


def _summed(done: Sequence[Completion]) -> Units:
    return Units(
        input_tokens=sum(c.usage.prompt_tokens for c in done),
        cached_tokens=sum(c.usage.cached_tokens for c in done),
        output_tokens=sum(c.usage.completion_tokens for c in done),
        reasoning_tokens=sum(c.usage.reasoning_tokens for c in done),
    )


def _units(usage: ModelUsage) -> Units:
    return Units(
        usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, reasoning_tokens=usage.reasoning_tokens
    )
