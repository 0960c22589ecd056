"""Catch-ups: a summary of a thread, or of a channel since a time, read from the platform's own history.

The history is read through the message's Directory (the adapter pages through the platform within its
rate limits), after checking that the asker may read it. It becomes numbered lines (`[12] 2026-12-04 09:30
Ada: …`); lines are packed in order into parts that fit the model's input budget. One part is summarized
in one call; several are each summarized into notes, then the notes are combined (in rounds, when even
the notes do not fit one call). The model cites messages by their numbers, which become links
afterwards: the links are the platform's own, never written by the model, and cost no tokens.

A channel's history is read newest first and at most CATCHUP_MAX_MESSAGES messages of it are kept (the
answer says when there were more), so the plan below is bounded before it is priced.

The whole plan's worst case (every part and every combining call, each with its full output budget) is
reserved once, before the first call: a catch-up either fits the budget and runs to the end, or is refused
before anything is spent (a refusal half-way would waste the parts already paid for).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.billing.budget import charge_for
from bot.billing.metering import Cell, MeteredChat
from bot.clock import Clock
from bot.directory import Directory, HistoryMessage
from bot.errors import BadCommand, NotAllowed, NotSupported
from bot.messages import IncomingMessage
from bot.providers.llm import PromptMessage
from bot.providers.tokens import TokenCounter
from bot.responder import Responder
from bot.settings import Settings
from storage.ledger_records import Charge

Status = Callable[[str], Awaitable[None]]  # shows how a catch-up goes ("reading history… 50 messages so far")
DEFAULT_SINCE = timedelta(hours=24)
SINCE_FORMATS = "30m, 2h, 3d, 1w, yesterday or a date (YYYY-MM-DD)"
_SPAN = re.compile(r"(?P<n>\d{1,4})(?P<unit>[mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_REF = re.compile(r"(?P<space> ?)\[(?P<n>\d{1,6})\]")
MIN_PART_TOKENS = 200  # the least history one call must read for a catch-up to be worth it
NOTE_HEADING_TOKENS = 10  # "Notes on part 12:" and the blank line before it
READ_PROGRESS_EVERY = 50  # messages between "reading history…" updates (Slack's slow tier: pages of 15)
PART_INSTRUCTION = (
    "You help someone catch up on a team chat they missed. Each line is one message: "
    "`[n] date time Name: text`. Write a short summary in the conversation's own language: the topics, "
    "decisions, open questions and who asked what of whom. Name people as the lines do. Cite the key "
    "messages by their markers, exactly as written, e.g. [12]. Do not invent anything."
)
NOTES_INSTRUCTION = (
    "This is part {part} of {parts} of a long chat, in order. Write concise notes of it for a later summary: "
    "topics, decisions, open questions, who said what, keeping the [n] markers of the key messages."
)
COMBINE_INSTRUCTION = (
    "You help someone catch up on a team chat they missed. Below are notes on consecutive parts of it, in "
    "order. Combine them into one short summary in the conversation's own language: the topics, decisions, "
    "open questions and who asked what of whom. Keep the [n] markers of the key messages. Invent nothing."
)


EXCLUDED = "This channel is not open to catch-ups (an admin listed it in CATCHUP_EXCLUDED_CHANNELS)"


def refuse_excluded(settings: Settings, channel_id: str, consequence: str = "") -> None:
    """Refuse a channel listed in CATCHUP_EXCLUDED_CHANNELS: never read for a catch-up or a digest, for anyone."""
    if channel_id in settings.catchup_excluded_channel_ids:
        raise NotAllowed(f"{EXCLUDED}{consequence}.")


def parse_since(word: str | None, now: datetime, tz: ZoneInfo) -> datetime:
    """The start of a catch-up: `30m`, `2h`, `3d`, `1w`, `yesterday` (its midnight), `YYYY-MM-DD` (its
    midnight), all in `tz`; 24 hours ago without a word."""
    if not word:
        return now - DEFAULT_SINCE
    word = word.strip().lower()
    span = _SPAN.fullmatch(word)
    if span is not None and int(span["n"]) > 0:
        return now - timedelta(**{_UNITS[span["unit"]]: int(span["n"])})
    if word == "yesterday":
        day = now.astimezone(tz).date() - timedelta(days=1)
    else:
        try:
            day = datetime.strptime(word, "%Y-%m-%d").date()
        except ValueError:
            raise BadCommand(f"{word!r} is not a time to catch up from: say {SINCE_FORMATS}.") from None
    start = datetime.combine(day, time(), tz)
    if start > now:
        raise BadCommand(f"{word} is in the future: say {SINCE_FORMATS}.")
    return start


@dataclass(frozen=True)
class Part:
    """Consecutive lines of the history that fit one call."""

    lines: tuple[str, ...]
    tokens: int


def cut_parts(lines: Sequence[str], room: int, tokens: TokenCounter) -> list[Part]:
    """Lines packed in order into parts of at most `room` tokens; a line longer than a part is clipped."""
    parts: list[Part] = []
    current: list[str] = []
    size = 0
    for line in lines:
        n = tokens.count(line) + 1  # the newline
        if n > room:
            line = tokens.clip(line, room - 1)
            n = room
        if current and size + n > room:
            parts.append(Part(tuple(current), size))
            current, size = [], 0
        current.append(line)
        size += n
    if current:
        parts.append(Part(tuple(current), size))
    return parts


def combining_rounds(parts: int, per_call: int) -> list[list[int]]:
    """How notes are combined: per round, the number of notes each call takes (`per_call` at most), until one."""
    rounds = []
    while parts > 1:
        calls = math.ceil(parts / per_call)
        sizes = [parts // calls + (1 if i < parts % calls else 0) for i in range(calls)]
        rounds.append(sizes)
        parts = calls
    return rounds


class CatchUps:
    """Reads a thread's or channel's history for one asker and summarizes it, metered as chat."""

    def __init__(self, *, settings: Settings, chat: MeteredChat, tokens: TokenCounter, clock: Clock) -> None:
        self._settings = settings
        self._chat = chat
        self._tokens = tokens
        self._clock = clock
        self._tz = ZoneInfo(settings.quota_timezone)

    def since(self, word: str | None) -> datetime:
        """The start a `since` word names (see parse_since)."""
        return parse_since(word, self._clock(), self._tz)

    async def summary(self, message: IncomingMessage, since: datetime, responder: Responder) -> str:
        """The catch-up of the message's thread (all of it) or channel (since `since`), its markers made links.

        Refused (NotAllowed) before anything is read when the channel is excluded or the asker may not read it.
        """
        channel, thread = message.channel_id, message.thread_id
        await self.check_readable(message, channel, thread)
        charge = charge_for(message, "chat", self._settings.chat_model)
        return await self._catch_up(message.directory, channel, thread, since, charge, responder.show_status)

    async def channel_digest(self, directory: Directory, charge: Charge, since: datetime) -> str:
        """A channel's catch-up since `since`, posted on a schedule (bot/digests.py): no asker, so it is
        read with the platform's own directory and charged as `charge` (the team's digest payer)."""
        refuse_excluded(self._settings, charge.channel_id)
        return await self._catch_up(directory, charge.channel_id, "", since, charge, _unseen)

    async def _catch_up(
        self, directory: Directory, channel: str, thread: str, since: datetime, charge: Charge, status: Status
    ) -> str:
        cap = None if thread else self._settings.catchup_max_messages  # a thread is read whole
        history, more = await self._read(directory, channel, thread, status, since=None if thread else since, cap=cap)
        when = f"{since.astimezone(self._tz):%Y-%m-%d %H:%M}"
        if not history:
            where = "this thread" if thread else f"this channel since {when}"
            return f"Nothing to catch up on: no messages in {where}."
        lines = [self._line(n, m) for n, m in enumerate(history, start=1)]
        text = _linked(await self._summarize(charge, lines, status), {n: m.link for n, m in enumerate(history, 1)})
        if more:
            return (
                f"This covers the latest {len(history):,} messages of more than {len(history):,} since {when}"
                f" (the most a catch-up reads, CATCHUP_MAX_MESSAGES).\n{text}"
            )
        return text

    async def check_readable(self, message: IncomingMessage, channel: str, thread: str) -> None:
        """Refuse an excluded channel, or one (or a thread) the asker may not read."""
        refuse_excluded(self._settings, channel)
        directory = message.directory
        if channel not in await directory.visible_channels([channel]) or (
            thread and not await directory.can_read_thread(channel, thread)
        ):
            raise NotAllowed("You cannot read that conversation, so I cannot catch you up on it.")

    async def _read(
        self,
        directory: Directory,
        channel: str,
        thread: str,
        status: Status,
        *,
        since: datetime | None,
        cap: int | None,
    ) -> tuple[list[HistoryMessage], bool]:
        """The history in time order, and whether there was more than `cap` (the directory yields a channel's
        newest first, so what is kept is the newest; reading stops at the first message past the cap)."""
        read: list[HistoryMessage] = []
        more = False
        await status("reading history…")
        async with contextlib.aclosing(directory.history(channel, thread, since=since)) as history:
            async for item in history:
                if not item.text.strip():
                    continue
                if cap is not None and len(read) == cap:
                    more = True
                    break
                read.append(item)
                if len(read) % READ_PROGRESS_EVERY == 0:
                    await status(f"reading history… {len(read):,} messages so far")
        read.sort(key=lambda m: m.created_at)
        return read, more

    def _line(self, n: int, item: HistoryMessage) -> str:
        when = item.created_at.astimezone(self._tz)
        text = " ".join(item.text.split())
        return f"[{n}] {when:%Y-%m-%d %H:%M} {item.author_name or item.author_id}: {text}"

    def _framing(self, instruction: str) -> int:
        return self._chat.prompt_tokens([PromptMessage("system", instruction), PromptMessage("user", "")])

    async def _summarize(self, charge: Charge, lines: list[str], status: Status) -> str:
        model = self._settings.chat_model
        budget = self._settings.input_token_budget
        notes_framing = self._framing(PART_INSTRUCTION + NOTES_INSTRUCTION)
        note = self._chat.max_output_tokens + NOTE_HEADING_TOKENS  # the most one part's notes take
        combine_framing = self._framing(COMBINE_INSTRUCTION)
        per_call = (budget - combine_framing) // note
        if budget - notes_framing < MIN_PART_TOKENS or per_call < 2:
            raise NotSupported(
                "Catch-ups need more room than MAX_CONTEXT_TOKENS leaves after MAX_OUTPUT_TOKENS: at least "
                f"{MIN_PART_TOKENS} tokens of history and two parts' notes per call; ask an admin to raise it."
            )
        parts = cut_parts(lines, budget - notes_framing, self._tokens)
        rounds = combining_rounds(len(parts), per_call)
        worst = [Cell([], notes_framing + p.tokens, model) for p in parts] + [
            Cell([], combine_framing + size * note, model) for r in rounds for size in r
        ]
        async with self._chat.plan(worst, charge) as plan:
            notes = []
            for i, part in enumerate(parts, start=1):
                if len(parts) > 1:
                    await status(f"summarizing part {i} of {len(parts)}")
                    instruction = f"{PART_INSTRUCTION}\n{NOTES_INSTRUCTION.format(part=i, parts=len(parts))}"
                else:
                    await status("summarizing…")
                    instruction = PART_INSTRUCTION
                notes.append(await plan.run(self._cell(instruction, "\n".join(part.lines))))
            for r, sizes in enumerate(rounds, start=1):
                await status(
                    f"combining {len(notes)} parts" + (f" (round {r} of {len(rounds)})" if len(rounds) > 1 else "")
                )
                combined, start = [], 0
                for size in sizes:
                    group = notes[start : start + size]
                    start += size
                    body = "\n\n".join(f"Notes on part {k}:\n{text}" for k, text in enumerate(group, start=1))
                    combined.append(await plan.run(self._cell(COMBINE_INSTRUCTION, body)))
                notes = combined
        return notes[0]

    def _cell(self, instruction: str, body: str) -> Cell:
        prompt = [PromptMessage("system", instruction), PromptMessage("user", body)]
        return Cell(prompt, self._chat.prompt_tokens(prompt), self._settings.chat_model)


async def _unseen(text: str) -> None:
    """A scheduled digest's progress: nobody waits on it."""


def _linked(text: str, links: dict[int, str | None]) -> str:
    """The model's [n] markers as links to those messages (dropped where the platform has no link)."""

    def link(match: re.Match[str]) -> str:
        n = int(match["n"])
        if n not in links:
            return match.group(0)
        url = links[n]
        return f"{match['space']}[{n}]({url})" if url else ""

    return _REF.sub(link, text)
