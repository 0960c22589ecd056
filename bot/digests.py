"""Digests: a channel's catch-up posted into it on a schedule (`/digest daily 09:00`, `weekly mon 09:00`).

A schedule's runs fall at its time in QUOTA_TIMEZONE. `run_due` (called each minute by the scheduler in
the bot, and by `python -m bot digests run --due`, e.g. from cron) claims each run whose time has come,
one conditional UPDATE per run in the database (storage/sql/digests.py), so when several processes share
a database exactly one of them posts it. A run covers the channel since the run before it (the first:
one period). Claims come before posting, so a run is never posted twice by two processes. A post that
fails (the platform, the model, the budget) is logged and retried at the next passes, each retry claimed
the same way, up to ATTEMPTS in all; then the run is skipped with a warning (the next run covers from the
skipped one's time on). A process that dies while posting loses that run the same way, rather than risk a
second post of it. A digest made (and charged) but not posted is kept with its run, so a retry posts that
same text without reading the channel or calling the model again; a failure before the digest was made
(history, the model, the budget) has its retry make it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.catchup import CatchUps
from bot.clock import Clock
from bot.directory import ChannelAccess
from bot.errors import BadCommand
from bot.settings import Settings
from storage.digests import ClaimedRun, DigestKey, Digests, DigestSchedule
from storage.ledger_records import Charge

log = logging.getLogger(__name__)

DAILY, WEEKLY = "daily", "weekly"
PERIODS = {DAILY: timedelta(days=1), WEEKLY: timedelta(weeks=1)}
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SCHEDULE_FORMATS = "daily HH:MM or weekly <mon..sun> HH:MM"
_HHMM = re.compile(r"(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)")
TICK_SECONDS = 60
ATTEMPTS = 3  # posts tried per run: the first and two retries, at the next scheduler passes
# A retry waits this long after the failure: the next pass (a minute on), not another process's pass that
# same minute.
RETRY_AFTER = timedelta(seconds=TICK_SECONDS / 2)
# The ledger's user for a digest: nobody asked for it, the channel's admins scheduled it for everyone in
# it, so the team pays (like memory's background embedding), under a name no platform user id can take.
DIGEST_PAYER = "(digest)"
DIGEST_HEADING = "Digest of this channel"


@dataclass(frozen=True)
class When:
    """A schedule as said: its period, weekday (weekly only, 0 = Monday) and time of day."""

    period: str
    weekday: int | None
    at: str


def parse_schedule(words: tuple[str, ...]) -> When:
    """`daily HH:MM` or `weekly <mon..sun> HH:MM` (a weekday's first three letters or more)."""
    said = " ".join(words)
    if not words or words[0].lower() not in PERIODS:
        raise BadCommand(f"{said!r} is not a schedule: say {SCHEDULE_FORMATS}.")
    period, rest = words[0].lower(), words[1:]
    weekday = None
    if period == WEEKLY:
        day = rest[0].lower() if len(rest) == 2 else ""
        found = [i for i, name in enumerate(WEEKDAY_NAMES) if day in (name, name[:3])]
        if not found:
            raise BadCommand(f"{said!r} is not a schedule: say {SCHEDULE_FORMATS}, e.g. weekly mon 09:00.")
        weekday, rest = found[0], rest[1:]
    clock = _HHMM.fullmatch(rest[0]) if len(rest) == 1 else None
    if clock is None:
        raise BadCommand(f"{said!r} is not a schedule: say {SCHEDULE_FORMATS}, with a 24-hour time such as 09:00.")
    return When(period, weekday, f"{int(clock['h']):02d}:{clock['m']}")


def describe(schedule: DigestSchedule) -> str:
    """`daily at 09:00` or `weekly on mon at 09:00`."""
    if schedule.weekday is None:
        return f"{schedule.period} at {schedule.at}"
    return f"{schedule.period} on {WEEKDAY_NAMES[schedule.weekday][:3]} at {schedule.at}"


def describe_failures(schedule: DigestSchedule, tz: ZoneInfo) -> str:
    """`` when the last run's post did not fail; else its failed attempts and what happens next."""
    if not schedule.failures:
        return ""
    said = f" (post failed {schedule.failures} of {ATTEMPTS} attempts"
    if schedule.retry_at is not None:
        return f"{said}; retried from {schedule.retry_at.astimezone(tz):%H:%M:%S})"
    return f"{said}; skipped)" if schedule.failures >= ATTEMPTS else f"{said}; then retried)"


def latest_run(schedule: DigestSchedule, now: datetime, tz: ZoneInfo) -> datetime:
    """The schedule's most recent time at or before `now` (its time of day in `tz`, on its weekday)."""
    local = now.astimezone(tz)
    hour, minute = (int(n) for n in schedule.at.split(":"))
    day = local.date()
    if schedule.weekday is not None:
        day -= timedelta(days=(day.weekday() - schedule.weekday) % 7)
    run = datetime.combine(day, time(hour, minute), tz)
    if run > local:
        run -= PERIODS[schedule.period]  # aware arithmetic in one zone keeps the wall time across DST
    return run


@dataclass(frozen=True)
class DigestRun:
    """A run to post: the channel's schedule and the start of the history it covers."""

    schedule: DigestSchedule
    since: datetime


class DigestPoster(Protocol):
    """Makes a channel's catch-up and posts it into the channel (the platform's own send, without an incoming
    message)."""

    def can_post(self, platform: str) -> bool:
        """Whether this process can post on `platform` (a run is claimed only where it can be posted)."""

    async def summarize(self, run: DigestRun) -> str:
        """The digest to post: the channel read since `run.since` and summarized (charged), headed."""

    async def post(self, run: DigestRun, text: str) -> None:
        """Post `text`, the run's digest, into its channel."""


class DigestRunner:
    """Claims the due runs of every schedule and has them posted."""

    def __init__(self, digests: Digests, clock: Clock, timezone: str, poster: DigestPoster) -> None:
        self._digests = digests
        self._clock = clock
        self._tz = ZoneInfo(timezone)
        self._poster = poster

    async def run_due(self) -> list[DigestRun]:
        """Post every run whose time has come and that no process has claimed yet, and retry those whose post
        failed; the runs posted."""
        return await self._run(*await self._candidates(due=True))

    async def run_now(self, channel_id: str | None = None) -> list[DigestRun]:
        """Post every digest (or the channel's) now, covering the channel since its last run."""
        return await self._run(*await self._candidates(due=False, channel_id=channel_id))

    async def waiting(self, *, due: bool, channel_id: str | None = None) -> Counter[str]:
        """{platform: runs} that `run_due` (`due`) or `run_now` would find to claim, asked of storage by the claims'
        own conditions without claiming: a command connects only where some wait (the claims still decide)."""
        candidates, retry_until = await self._candidates(due=due, channel_id=channel_id)
        return Counter(
            [s.key.platform for s, at in candidates if await self._digests.claimable(s.key, at, retry_until)]
        )

    async def _candidates(
        self, *, due: bool, channel_id: str | None = None
    ) -> tuple[list[tuple[DigestSchedule, datetime]], datetime | None]:
        """Each schedule with the time of the run to claim (its latest, or now), and until when failed runs'
        retries are due (None: none retried)."""
        now = self._clock()
        schedules = await self._digests.schedules()
        if due:
            return [(s, latest_run(s, now, self._tz)) for s in schedules], now
        return [(s, now) for s in schedules if channel_id in (None, s.key.channel_id)], None

    async def _run(self, due: list[tuple[DigestSchedule, datetime]], retry_until: datetime | None) -> list[DigestRun]:
        """Claim and post each schedule's run due at its time, else (with `retry_until`) a failed run's retry."""
        posted = []
        for schedule, at in due:
            if not self._poster.can_post(schedule.key.platform):
                continue  # left for a process connected to that platform
            claimed = await self._digests.claim(schedule.key, at)
            if claimed is None and retry_until is not None:
                claimed = await self._digests.claim_retry(schedule.key, retry_until)
            if claimed is None:
                continue  # not due, or another process has it
            run = DigestRun(schedule, claimed.previous or claimed.due - PERIODS[schedule.period])
            text = claimed.text  # made by an earlier attempt: posted as it is, not summarized (and charged) again
            try:
                if text is None:
                    text = await self._poster.summarize(run)
                await self._poster.post(run, text)
            except Exception:  # one channel's failure must not stop the others' digests
                await self._failed(schedule.key, claimed, text)
                continue
            if claimed.text is not None:
                await self._digests.record_posted(schedule.key, claimed.due)
            posted.append(run)
        return posted

    async def _failed(self, key: DigestKey, claimed: ClaimedRun, text: str | None) -> None:
        """Log a failed post (with its stack trace, never the text) and have it retried, keeping `text` (the digest
        made, None if none) for the retry, or give it up."""
        due = f"{claimed.due.astimezone(self._tz):%Y-%m-%d %H:%M}"
        where = f"{key.platform} channel {_where(key)}"
        if claimed.attempt < ATTEMPTS:
            log.warning(
                "the digest of %s due %s could not be posted (attempt %d of %d); retried at the next pass",
                where, due, claimed.attempt, ATTEMPTS, exc_info=True,
            )  # fmt: skip
            await self._digests.record_failure(key, claimed.due, self._clock() + RETRY_AFTER, text)
            return
        log.warning(
            "the digest of %s due %s could not be posted (attempt %d of %d); skipped: the next run covers from %s on",
            where, due, claimed.attempt, ATTEMPTS, due, exc_info=True,
        )  # fmt: skip
        await self._digests.record_failure(key, claimed.due, None, text)  # storage keeps no text for a run given up


class CatchUpPoster:
    """Posts a run's catch-up through the platform's ChannelAccess, charged to the team as DIGEST_PAYER."""

    def __init__(self, catchups: CatchUps, access: Mapping[str, ChannelAccess], settings: Settings) -> None:
        self._catchups = catchups
        self._access = access  # filled by the adapters as they start (Engine.channel_access)
        self._model = settings.chat_model
        self._tz = ZoneInfo(settings.quota_timezone)

    def can_post(self, platform: str) -> bool:
        return platform in self._access

    async def summarize(self, run: DigestRun) -> str:
        key = run.schedule.key
        charge = Charge(key.platform, key.team_id, DIGEST_PAYER, key.channel_id, "chat", self._model)
        directory = self._access[key.platform].team_directory(key.team_id)
        text = await self._catchups.channel_digest(directory, charge, run.since)
        return f"{DIGEST_HEADING} since {run.since.astimezone(self._tz):%Y-%m-%d %H:%M}:\n{text}"

    async def post(self, run: DigestRun, text: str) -> None:
        key = run.schedule.key
        await self._access[key.platform].post_to_channel(key.team_id, key.channel_id, text)


def _where(key: DigestKey) -> str:
    return f"{key.team_id}/{key.channel_id}"


async def run_every_minute(
    run_due: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    seconds: float = TICK_SECONDS,
) -> None:
    """The scheduler: `run_due` each `seconds` until `stop` is set (a failed round is logged, the next runs)."""
    while not stop.is_set():
        try:
            await run_due()
        except Exception:
            log.exception("the digest round failed; the next one runs in %s seconds", seconds)
        with contextlib.suppress(TimeoutError):  # the minute passed: the next round
            await asyncio.wait_for(stop.wait(), seconds)
