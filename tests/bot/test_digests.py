"""Digests: /digest stores a channel's schedule; `run_due` claims each due run exactly once, even with
several processes on one database, and hands it to the poster with the history's start."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.console.adapter import TEAM_ID as CONSOLE_TEAM
from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from bot.app import PLATFORMS, open_engine
from bot.chat.engine import Engine
from bot.commands.catalog import command_registry
from bot.commands.services import CommandServices
from bot.digests import DIGEST_PAYER, DigestRun, DigestRunner, latest_run, run_every_minute
from bot.errors import BadCommand, NotAllowed
from bot.settings import Settings, load_settings
from storage import Store, open_store
from storage.digests import DigestKey, DigestSchedule
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.fakes.slack_api import FakeSlack
from tests.harness.admin_cli import run_cli
from tests.harness.commands import run_command
from tests.harness.messages import message
from tests.harness.stores import fresh_database, opened

# Friday 2026-12-04, 08:00 UTC = 09:00 in Europe/Berlin (the QUOTA_TIMEZONE below).
FRIDAY_9 = datetime(2026, 12, 4, 8, tzinfo=UTC)
KEY = DigestKey("console", "local", "c1")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorded:
    """A poster that keeps what it was asked to post (the platforms' own posting is tested with their fakes).
    Its digests are numbered as made, so a retry shows whether it posts an earlier one or makes another."""

    def __init__(self, fail_on: str = "", *, times: int = 1_000, summaries_failing: int = 0) -> None:
        self.runs: list[DigestRun] = []
        self.posted: list[str] = []
        self.attempts = 0  # posts tried
        self.summaries = 0  # digests made (each one charged, in the bot)
        self._fail_on = fail_on
        self._times = times  # posts to `fail_on` that fail before one succeeds
        self._summaries_failing = summaries_failing  # digests of `fail_on` that fail to be made before one is

    def can_post(self, platform: str) -> bool:
        return platform == "console"

    async def summarize(self, run: DigestRun) -> str:
        if run.schedule.key.channel_id == self._fail_on and self._summaries_failing > 0:
            self._summaries_failing -= 1
            raise RuntimeError("the model is down")
        self.summaries += 1
        return f"digest {self.summaries} of {run.schedule.key.channel_id}"

    async def post(self, run: DigestRun, text: str) -> None:
        self.attempts += 1
        if run.schedule.key.channel_id == self._fail_on and self._times > 0:
            self._times -= 1
            raise RuntimeError("the platform refused")
        self.runs.append(run)
        self.posted.append(text)


class Terminal(io.StringIO):
    """The console's output; `posted` is set when a digest is printed."""

    def __init__(self) -> None:
        super().__init__()
        self.posted = asyncio.Event()

    def write(self, text: str) -> int:
        if "Digest of this channel" in text:
            self.posted.set()
        return super().write(text)


@pytest.fixture
def berlin_settings(tmp_path: Path) -> Settings:
    return load_settings(
        env_file=None,
        openai_api_key="test-key-not-secret",
        database_url=f"sqlite:///{tmp_path}/t.db",
        quota_timezone="Europe/Berlin",
    )


@pytest.fixture
async def sqlite_store(berlin_settings: Settings) -> AsyncIterator[Store]:
    store = await open_store(berlin_settings.database_url)
    try:
        yield store
    finally:
        await store.close()


async def run(services: CommandServices, text: str, *, admin: bool = True, channel: str = "c1") -> str:
    responder = await run_command(services, text, admin=admin, channel=channel)
    return "\n".join(text for text, _ in responder.texts)


def services(settings: Settings, store: Store, clock: Clock) -> CommandServices:
    return CommandServices(
        settings=settings, commands=command_registry(), platforms=PLATFORMS, clock=clock, digests=store.digests
    )


async def test_digest_is_set_shown_replaced_and_turned_off(berlin_settings: Settings, sqlite_store: Store) -> None:
    clock = Clock(FRIDAY_9 - timedelta(hours=1))
    cs = services(berlin_settings, sqlite_store, clock)

    assert "no digest" in await run(cs, "/digest")
    said = await run(cs, "/digest daily 9:00")
    assert "daily at 09:00 (Europe/Berlin)" in said and "first on 2026-12-04 09:00" in said
    assert "daily at 09:00" in await run(cs, "/digest") and "last run: not yet" in await run(cs, "/digest")
    said = await run(cs, "/digest weekly Monday 17:30")
    assert "weekly on mon at 17:30" in said and "first on 2026-12-07 17:30" in said
    stored = await sqlite_store.digests.get(KEY)
    assert stored is not None and (stored.period, stored.weekday, stored.at, stored.set_by) == (
        "weekly",
        0,
        "17:30",
        "u1",
    )
    assert await sqlite_store.digests.get(DigestKey("console", "local", "c2")) is None
    assert "is off" in await run(cs, "/digest off")
    assert await sqlite_store.digests.get(KEY) is None
    assert "no digest" in await run(cs, "/digest off")


@pytest.mark.parametrize(
    "text",
    [
        "/digest daily",
        "/digest daily 25:00",
        "/digest daily 9",
        "/digest weekly 09:00",
        "/digest weekly fun 09:00",
        "/digest hourly 09:00",
        "/digest off now",
    ],
)
async def test_a_wrong_schedule_is_refused_and_nothing_is_stored(
    berlin_settings: Settings, sqlite_store: Store, text: str
) -> None:
    cs = services(berlin_settings, sqlite_store, Clock(FRIDAY_9))
    with pytest.raises(BadCommand, match=r"schedule|Usage"):
        await run(cs, text)
    assert await sqlite_store.digests.schedules() == []


async def test_only_admins_set_or_stop_digests(berlin_settings: Settings, sqlite_store: Store) -> None:
    cs = services(berlin_settings, sqlite_store, Clock(FRIDAY_9))
    with pytest.raises(NotAllowed, match="Only admins can change"):
        await run(cs, "/digest daily 09:00", admin=False)
    assert await sqlite_store.digests.schedules() == []
    await run(cs, "/digest daily 09:00")
    with pytest.raises(NotAllowed, match="Only admins can change"):
        await run(cs, "/digest off", admin=False)
    assert "daily at 09:00" in await run(cs, "/digest", admin=False)  # anyone may see it


async def test_forget_keeps_the_channels_digest_but_not_who_set_it(sqlite_store: Store) -> None:
    await sqlite_store.digests.set(schedule())
    await sqlite_store.forget_user("local", "u1", "forgotten-7f3a")
    stored = await sqlite_store.digests.get(KEY)
    assert stored is not None and stored.set_by == "forgotten-7f3a"


def schedule(
    period: str = "daily", weekday: int | None = None, at: str = "09:00", channel: str = "c1"
) -> DigestSchedule:
    return DigestSchedule(
        DigestKey("console", "local", channel), period, weekday, at, "u1", FRIDAY_9 - timedelta(days=30)
    )


async def test_a_digest_for_an_excluded_channel_is_refused_and_nothing_is_stored(
    berlin_settings: Settings, sqlite_store: Store
) -> None:
    settings = berlin_settings.model_copy(update={"catchup_excluded_channels": "c9, c1"})
    cs = services(settings, sqlite_store, Clock(FRIDAY_9))
    for text in ("/digest daily 09:00", "/digest weekly mon 09:00"):
        with pytest.raises(NotAllowed, match=r"not open to catch-ups .*CATCHUP_EXCLUDED_CHANNELS.*no digest"):
            await run(cs, text)
    assert await sqlite_store.digests.schedules() == []
    assert "no digest" in await run(cs, "/digest")
    assert "daily at 09:00" in await run(cs, "/digest daily 09:00", channel="c2")  # another channel may have one


def test_latest_run_is_the_last_scheduled_time_in_the_zone_also_across_a_dst_change() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    assert latest_run(schedule(), FRIDAY_9, berlin) == FRIDAY_9
    assert latest_run(schedule(), FRIDAY_9 - timedelta(seconds=1), berlin) == FRIDAY_9 - timedelta(days=1)
    assert latest_run(schedule("weekly", 0), FRIDAY_9, berlin) == datetime(2026, 11, 30, 8, tzinfo=UTC)
    # 2026-03-29: Berlin moves from UTC+1 to UTC+2; 09:00 stays 09:00 on both sides.
    after = latest_run(schedule(), datetime(2026, 3, 29, 12, tzinfo=UTC), berlin)
    before = latest_run(schedule(), datetime(2026, 3, 29, 6, tzinfo=UTC), berlin)
    assert after == datetime(2026, 3, 29, 7, tzinfo=UTC) and before == datetime(2026, 3, 28, 8, tzinfo=UTC)


async def test_a_due_run_is_posted_once_since_the_run_before(berlin_settings: Settings, sqlite_store: Store) -> None:
    clock = Clock(FRIDAY_9 - timedelta(minutes=1))
    poster = Recorded()
    runner = DigestRunner(sqlite_store.digests, clock, "Europe/Berlin", poster)
    await sqlite_store.digests.set(DigestSchedule(KEY, "daily", None, "09:00", "u1", FRIDAY_9 - timedelta(hours=3)))

    assert await runner.run_due() == []  # set at 06:00 local, after the day before's run: not due yet
    clock.now = FRIDAY_9 + timedelta(minutes=1)
    first = await runner.run_due()
    assert [r.since for r in first] == [FRIDAY_9 - timedelta(days=1)]  # the first covers one period
    assert await runner.run_due() == []
    clock.now = FRIDAY_9 + timedelta(days=1, minutes=5)
    second = await runner.run_due()
    assert [r.since for r in second] == [FRIDAY_9]
    stored = await sqlite_store.digests.get(KEY)
    assert stored is not None and stored.last_run == FRIDAY_9 + timedelta(days=1)
    assert len(poster.runs) == 2


async def test_one_channels_failed_post_does_not_stop_the_others(
    berlin_settings: Settings, sqlite_store: Store
) -> None:
    poster = Recorded(fail_on="c1")
    runner = DigestRunner(sqlite_store.digests, Clock(FRIDAY_9), "Europe/Berlin", poster)
    for channel in ("c1", "c2"):
        await sqlite_store.digests.set(schedule(channel=channel))
    posted = await runner.run_due()
    assert [r.schedule.key.channel_id for r in posted] == ["c2"]
    assert await runner.run_due() == []  # c1 is retried (and fails again); c2 is not posted twice
    assert [r.schedule.key.channel_id for r in poster.runs] == ["c2"]


async def failing_digest(store: Store, *, times: int) -> tuple[Clock, Recorded, DigestRunner]:
    """c1's daily 09:00 digest, due half a minute ago, whose first `times` posts fail."""
    clock = Clock(FRIDAY_9 + timedelta(seconds=30))
    poster = Recorded(fail_on="c1", times=times)
    await store.digests.set(schedule())
    return clock, poster, DigestRunner(store.digests, clock, "Europe/Berlin", poster)


async def test_a_digest_whose_post_failed_is_posted_at_the_next_pass_exactly_once(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock, poster, runner = await failing_digest(sqlite_store, times=1)
    with caplog.at_level("INFO", logger="bot.digests"):
        assert await runner.run_due() == []
    [failed] = caplog.records
    assert failed.levelname == "WARNING" and "attempt 1 of 3); retried at the next pass" in failed.getMessage()
    stored = await sqlite_store.digests.get(KEY)
    assert stored is not None and (stored.last_run, stored.failures) == (FRIDAY_9, 1)

    clock.now += timedelta(minutes=1)
    [retried] = await runner.run_due()
    assert retried.since == FRIDAY_9 - timedelta(days=1)  # the same run: covers from the run before it
    clock.now += timedelta(minutes=1)
    assert await runner.run_due() == []
    assert len(poster.runs) == 1 and poster.attempts == 2
    stored = await sqlite_store.digests.get(KEY)
    assert stored is not None and (stored.failures, stored.retry_at) == (1, None)


async def test_a_digest_that_fails_three_times_is_skipped_to_the_next_slot_with_a_warning(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock, poster, runner = await failing_digest(sqlite_store, times=3)
    with caplog.at_level("INFO", logger="bot.digests"):
        for _ in range(5):
            assert await runner.run_due() == []
            clock.now += timedelta(minutes=1)
    assert poster.attempts == 3  # then no more tries for that slot
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3 and all("the digest of console channel local/c1 due 2026-12-04 09:00" in w
                                      for w in warnings)  # fmt: skip
    assert warnings[-1].endswith("(attempt 3 of 3); skipped: the next run covers from 2026-12-04 09:00 on")
    assert all("refused" not in r.getMessage() for r in caplog.records)  # the error is in the trace only
    stored = await sqlite_store.digests.get(KEY)
    assert stored is not None and (stored.failures, stored.retry_at) == (3, None)

    clock.now = FRIDAY_9 + timedelta(days=1, seconds=30)
    [next_slot] = await runner.run_due()
    assert next_slot.since == FRIDAY_9 and len(poster.runs) == 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_several_processes_retry_a_failed_digest_exactly_once(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url, opened(url) as one, opened(url) as two:
        await one.digests.set(schedule())
        poster = Recorded(fail_on="c1", times=1)
        clock = Clock(FRIDAY_9 + timedelta(seconds=30))
        runners = [DigestRunner(s.digests, clock, "Europe/Berlin", poster) for s in (one, two, one, two)]
        await asyncio.gather(*(r.run_due() for r in runners))
        assert (poster.attempts, poster.runs) == (1, [])
        clock.now += timedelta(minutes=1)
        await asyncio.gather(*(r.run_due() for r in runners))
        assert poster.attempts == 2 and [r.since for r in poster.runs] == [FRIDAY_9 - timedelta(days=1)]
        assert (poster.summaries, poster.posted) == (1, ["digest 1 of c1"])  # the retry posts the digest made


async def kept(store: Store) -> bool:
    stored = await store.digests.get(KEY)
    assert stored is not None
    return stored.text_kept


async def test_a_retry_posts_the_digest_made_before_and_the_kept_text_goes_once_posted(store: Store) -> None:
    clock, poster, runner = await failing_digest(store, times=1)
    assert await runner.run_due() == []
    assert (poster.summaries, poster.attempts) == (1, 1) and await kept(store)
    clock.now += timedelta(minutes=1)
    [retried] = await runner.run_due()
    assert retried.since == FRIDAY_9 - timedelta(days=1)
    assert (poster.summaries, poster.posted) == (1, ["digest 1 of c1"])  # not read nor summarized again
    assert not await kept(store)


async def test_a_digest_given_up_after_its_last_failed_post_keeps_no_text(store: Store) -> None:
    clock, poster, runner = await failing_digest(store, times=3)
    for attempt in (1, 2):
        assert await runner.run_due() == []
        assert poster.attempts == attempt and await kept(store)  # waits for the next attempt
        clock.now += timedelta(minutes=1)
    assert await runner.run_due() == []
    stored = await store.digests.get(KEY)
    assert stored is not None and (stored.failures, stored.retry_at, stored.text_kept) == (3, None, False)
    assert (poster.summaries, poster.attempts, poster.posted) == (1, 3, [])


async def test_a_failure_before_the_digest_was_made_has_the_retry_make_it_then_keep_it(store: Store) -> None:
    clock, _, _ = await failing_digest(store, times=0)
    poster = Recorded(fail_on="c1", times=1, summaries_failing=1)
    runner = DigestRunner(store.digests, clock, "Europe/Berlin", poster)
    assert await runner.run_due() == []  # the model failed: nothing made, nothing kept
    assert (poster.summaries, poster.attempts) == (0, 0) and not await kept(store)
    clock.now += timedelta(minutes=1)
    assert await runner.run_due() == []  # made at the retry, then its post failed: kept
    assert (poster.summaries, poster.attempts) == (1, 1) and await kept(store)
    clock.now += timedelta(minutes=1)
    assert len(await runner.run_due()) == 1
    assert (poster.summaries, poster.posted) == (1, ["digest 1 of c1"]) and not await kept(store)


async def test_a_retry_left_unfinished_keeps_its_text_only_until_the_next_run_is_claimed(store: Store) -> None:
    clock, _, runner = await failing_digest(store, times=1)
    assert await runner.run_due() == []
    claimed = await store.digests.claim_retry(KEY, clock.now + timedelta(minutes=1))  # a process that then died
    assert claimed is not None and (claimed.attempt, claimed.text) == (2, "digest 1 of c1")
    assert await store.digests.claim(KEY, FRIDAY_9 + timedelta(days=1)) is not None
    assert not await kept(store)


@pytest.mark.parametrize("gone", ["forget", "deleted", "edited"])
async def test_forget_or_a_deletion_or_edit_in_the_channel_drops_the_kept_text_and_the_retry_summarizes_again(
    store: Store, gone: str
) -> None:
    from storage import PlatformMessage

    clock, poster, runner = await failing_digest(store, times=1)
    assert await runner.run_due() == [] and await kept(store)
    elsewhere = PlatformMessage("console", "local", "c2", "1.1")
    assert await store.delete_platform_message(elsewhere) == 0
    assert await store.edit_platform_message(elsewhere, "u2", "edited", 1) == 0
    assert await kept(store)  # another channel's message: the digest of c1 does not quote it
    here = PlatformMessage("console", "local", "c1", "1.1")
    if gone == "forget":
        await store.forget_user("local", "u2", "forgotten-1")
    elif gone == "deleted":
        await store.delete_platform_message(here)
    else:
        await store.edit_platform_message(here, "u2", "edited", 1)
    assert not await kept(store)
    clock.now += timedelta(minutes=1)
    assert len(await runner.run_due()) == 1
    assert (poster.summaries, poster.posted) == (2, ["digest 2 of c1"])


async def test_run_now_posts_every_digest_or_one_channels(berlin_settings: Settings, sqlite_store: Store) -> None:
    clock = Clock(FRIDAY_9 + timedelta(hours=3))
    poster = Recorded()
    runner = DigestRunner(sqlite_store.digests, clock, "Europe/Berlin", poster)
    for channel in ("c1", "c2"):
        await sqlite_store.digests.set(schedule(channel=channel))
    assert [r.schedule.key.channel_id for r in await runner.run_now("c2")] == ["c2"]
    clock.now += timedelta(minutes=1)
    assert [r.schedule.key.channel_id for r in await runner.run_now()] == ["c1", "c2"]
    assert await runner.run_due() == []  # today's 09:00 is covered by the runs just made


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_several_processes_post_a_due_run_exactly_once(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url, opened(url) as one, opened(url) as two:
        for n in range(5):
            await one.digests.set(schedule(channel=f"c{n}"))
        poster = Recorded()
        clock = Clock(FRIDAY_9 + timedelta(seconds=30))
        runners = [DigestRunner(s.digests, clock, "Europe/Berlin", poster) for s in (one, two, one, two)]
        await asyncio.gather(*(r.run_due() for r in runners))
        assert sorted(r.schedule.key.channel_id for r in poster.runs) == [f"c{n}" for n in range(5)]
        assert {r.since for r in poster.runs} == {FRIDAY_9 - timedelta(days=1)}


async def test_the_scheduler_runs_each_round_and_stops_when_told() -> None:
    stop = asyncio.Event()
    rounds: list[int] = []

    async def run_due() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise RuntimeError("the database went away")  # logged; the next round still runs
        if len(rounds) == 3:
            stop.set()

    await asyncio.wait_for(run_every_minute(run_due, stop, seconds=0), 5)
    assert rounds == [0, 1, 2]


async def test_the_bots_scheduler_posts_a_console_channels_digest_charged_to_the_team(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    out = Terminal()
    adapter = ConsoleAdapter(engine, ConsoleIdentity(user_id="ada"), stdin=io.StringIO("We launch on Friday.\n"),
                             stdout=out, files_dir=tmp_path)  # fmt: skip
    fake_openai.enqueue(Reply("Noted."), Reply("Ada set the launch for Friday [1]."))
    assert await adapter.run() == 0
    now = engine.now()
    tz = ZoneInfo(engine.settings.quota_timezone)
    due = f"{(now - timedelta(minutes=1)).astimezone(tz):%H:%M}"
    key = DigestKey("console", CONSOLE_TEAM, "console")
    await engine.store.digests.set(DigestSchedule(key, "daily", None, due, "ada", now - timedelta(days=2)))

    stop = asyncio.Event()
    async with engine.background(stop):  # the scheduler's first round runs at once
        await asyncio.wait_for(out.posted.wait(), 30)
    posted = out.getvalue().splitlines()[-2:]
    assert posted[0].startswith("[#console] Digest of this channel since ")
    assert posted[1] == "Ada set the launch for Friday."
    spent = await engine.store.ledger.usage(CONSOLE_TEAM, "2000-01-01", user_id=DIGEST_PAYER)
    assert [(row.user_id, row.kind, row.calls) for row in spent] == [(DIGEST_PAYER, "chat", 1)]
    stored = await engine.store.digests.get(key)
    assert stored is not None and stored.last_run is not None


async def test_an_operator_lists_and_posts_digests_from_the_cli(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    fake_openai.enqueue(Reply("Noted."), Reply("Ada set the launch for Friday [1]."))
    async with open_engine(make_settings()) as engine:
        await engine.handle(message("We launch on Friday.", user="ada"), RecordingResponder())
        now = engine.now()
        due = f"{(now - timedelta(minutes=1)).astimezone(ZoneInfo(engine.settings.quota_timezone)):%H:%M}"
        for key in (KEY, DigestKey("discord", "1", "2")):
            await engine.store.digests.set(DigestSchedule(key, "daily", None, due, "ada", now - timedelta(days=2)))
    for name, value in (("DATABASE_URL", db_url), ("OPENAI_API_KEY", "test-key-not-secret"),
                        ("OPENAI_BASE_URL", fake_openai.base_url), ("FETCH_ENABLED", "false")):  # fmt: skip
        monkeypatch.setenv(name, value)

    code, listed, _ = await run_cli("digests")
    assert code == 0 and f"console local c1: daily at {due}" in listed and "discord 1 2" in listed
    code, out, err = await run_cli("digests", "run", "--due")
    assert code == 0, err
    assert "[#c1] Digest of this channel since " in out and "Ada set the launch for Friday." in out
    assert "Posted 1 digest." in out and "1 digest on discord left to the running bot" in out
    code, out, _ = await run_cli("digests", "run", "--due")
    assert "Posted 0 digests." in out  # claimed once
    code, _, err = await run_cli("digests", "run", "--due", "--channel", "c1")
    assert code != 0 and "--channel goes with --now" in err


async def test_the_cli_posts_slack_digests_through_the_web_api(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    fake_openai.enqueue(Reply("Ada ships on Friday [1]."))
    async with open_engine(make_settings()) as engine:
        now = engine.now()
        await engine.store.digests.set(
            DigestSchedule(DigestKey("slack", "T1", "C1"), "daily", None, "09:00", "UBOSS", now - timedelta(days=2))
        )
    async with FakeSlack() as slack:
        slack.add_history("C1", f"{now.timestamp() - 60:.6f}", "UADA", "We ship the launch on Friday.")
        for name, value in (("DATABASE_URL", db_url), ("OPENAI_API_KEY", "test-key-not-secret"),
                            ("OPENAI_BASE_URL", fake_openai.base_url), ("FETCH_ENABLED", "false"),
                            ("SLACK_BOT_TOKEN", "xoxb-test"), ("SLACK_SIGNING_SECRET", "not-a-real-secret"),
                            ("SLACK_API_URL", slack.base_url)):  # fmt: skip
            monkeypatch.setenv(name, value)
        code, out, err = await run_cli("digests", "run", "--now", "--channel", "C1")
        assert code == 0, err
        [posted] = slack.called("chat.postMessage")
    assert out == "Posted 1 digest.\n"
    assert posted["channel"] == "C1" and posted["text"].startswith("Digest of this channel since ")
    assert "Ada ships on Friday <https://acme.slack.example/archives/C1/p" in posted["text"]
    assert "We ship the launch on Friday." in fake_openai.chat_requests()[0]["messages"][-1]["content"]


async def test_a_slack_digest_whose_post_failed_is_listed_with_its_attempts_then_posted_once(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    from adapters.slack.directory import SlackChannelAccess
    from bot.digests import CatchUpPoster
    from bot.directory import ChannelAccess

    clock = Clock(FRIDAY_9 + timedelta(seconds=30))
    settings = make_settings(quota_timezone="Europe/Berlin")
    fake_openai.enqueue(Reply("Ada ships on Friday [1]."))
    async with FakeSlack() as slack, open_engine(settings, clock=clock) as engine:
        key = DigestKey("slack", "T1", "C1")
        set_at = FRIDAY_9 - timedelta(days=2)
        await engine.store.digests.set(DigestSchedule(key, "daily", None, "09:00", "UBOSS", set_at))
        slack.add_history("C1", f"{(FRIDAY_9 - timedelta(hours=1)).timestamp():.6f}", "UADA", "We ship on Friday.")
        slack.failures["chat.postMessage"] = [500]
        access: dict[str, ChannelAccess] = {"slack": SlackChannelAccess.from_settings("xoxb-test", slack.base_url)}
        poster = CatchUpPoster(engine.services.catchups, access, settings)
        runner = DigestRunner(engine.store.digests, clock, "Europe/Berlin", poster)
        assert await runner.run_due() == []

        for name, value in (("DATABASE_URL", db_url), ("OPENAI_API_KEY", "test-key-not-secret"),
                            ("QUOTA_TIMEZONE", "Europe/Berlin")):  # fmt: skip
            monkeypatch.setenv(name, value)
        code, listed, _ = await run_cli("digests")
        assert code == 0
        assert listed.endswith("last run 2026-12-04 09:00 (post failed 1 of 3 attempts; retried from 09:01:00)\n")

        clock.now += timedelta(minutes=1)
        assert [r.schedule.key for r in await runner.run_due()] == [key]
        clock.now += timedelta(minutes=1)
        assert await runner.run_due() == []
        calls = slack.called("chat.postMessage")
    assert len(calls) == 2 and calls[0] == calls[1]  # the failed post, then the same digest once
    assert calls[1]["text"].startswith("Digest of this channel since 2026-12-03 09:00:\nAda ships on Friday <https:")
    assert len(fake_openai.chat_requests()) == 1  # the retry posts the digest made at the first attempt


async def test_what_waits_is_what_the_next_pass_claims_retries_included(store: Store) -> None:
    clock, poster, runner = await failing_digest(store, times=1)
    assert await runner.waiting(due=True) == {"console": 1}
    assert await runner.run_due() == [] and poster.runs == []  # claimed, and its post failed
    assert await runner.waiting(due=True) == {}  # its retry is not due yet
    clock.now += timedelta(minutes=1)
    assert await runner.waiting(due=True) == {"console": 1}  # now it is
    assert len(await runner.run_due()) == 1
    assert await runner.waiting(due=True) == {}
    assert await runner.waiting(due=False) == {"console": 1}  # --now posts every digest whatever its time


async def test_a_slack_digest_whose_post_failed_is_posted_again_as_made_without_summarizing_or_charging_again(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    from adapters.slack.directory import SlackChannelAccess
    from bot.digests import CatchUpPoster
    from bot.directory import ChannelAccess

    clock = Clock(FRIDAY_9 + timedelta(seconds=30))
    settings = make_settings(quota_timezone="Europe/Berlin")
    # A second summary would differ: the retry must post the first one, as it was made.
    fake_openai.enqueue(Reply("Ada ships on Friday [1]."), Reply("Someone said something."))
    async with FakeSlack() as slack, open_engine(settings, clock=clock) as engine:
        key = DigestKey("slack", "T1", "C1")
        await engine.store.digests.set(
            DigestSchedule(key, "daily", None, "09:00", "UBOSS", FRIDAY_9 - timedelta(days=2))
        )
        slack.add_history("C1", f"{(FRIDAY_9 - timedelta(hours=1)).timestamp():.6f}", "UADA", "We ship on Friday.")
        slack.failures["chat.postMessage"] = [500]
        access: dict[str, ChannelAccess] = {"slack": SlackChannelAccess.from_settings("xoxb-test", slack.base_url)}
        runner = DigestRunner(
            engine.store.digests, clock, "Europe/Berlin", CatchUpPoster(engine.services.catchups, access, settings)
        )
        assert await runner.run_due() == []
        clock.now += timedelta(minutes=1)
        assert [r.schedule.key for r in await runner.run_due()] == [key]
        spent = await engine.store.ledger.usage("T1", "2000-01-01", user_id=DIGEST_PAYER)
        stored = await engine.store.digests.get(key)
        calls = slack.called("chat.postMessage")
    assert len(fake_openai.chat_requests()) == 1  # summarized once
    assert [(row.user_id, row.kind, row.calls) for row in spent] == [(DIGEST_PAYER, "chat", 1)]  # charged once
    assert len(calls) == 2 and calls[1] == calls[0]  # the failed post, then the same text
    assert "Ada ships on Friday <https:" in calls[1]["text"]
    assert stored is not None and (stored.failures, stored.retry_at, stored.text_kept) == (1, None, False)
