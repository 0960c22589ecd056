"""Money exact at the edges of a call's life (issue 15), on SQLite and PostgreSQL: a stream cut
mid-way, a read timeout and an empty reply are charged what the provider ran; a call that outlives
the reservation TTL keeps its hold; refusals quote the figures their decision saw."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.billing.budget import Budget, QuotaExceeded
from bot.billing.money import format_usd, usd_to_nanos
from bot.billing.prices import PriceTable
from bot.settings import load_settings
from storage.ledger_records import Charge, Recovered, Units
from tests.fakes.openai_server import DropMidStream, FakeOpenAI, Reply, Scripted, Stall, count_tokens, prompt_tokens
from tests.fakes.responder import RecordingResponder
from tests.harness.clock import Clock
from tests.harness.messages import message
from tests.harness.stores import fresh_database, opened


async def ledger(url: str, team: str = "local") -> list[tuple[str, str, int, str]]:
    async with opened(url) as store:
        return await store.ledger.ledger_rows(team)


@pytest.mark.parametrize(
    ("fault", "received"),
    [
        (DropMidStream("a partial answer that the server cut", after_chunks=3), "a partial answer that the server cut"),
        (Stall(3.0), ""),
        (Reply("", prompt_tokens=None, completion_tokens=0), ""),
    ],
    ids=["cut-mid-stream", "read-timeout", "empty-reply"],
)
async def test_a_call_the_provider_ran_and_that_failed_is_charged_its_prompt_and_the_output_received(
    make_settings: Any, fake_openai: FakeOpenAI, url: str, fault: Scripted, received: str
) -> None:
    settings = make_settings(database_url=url, openai_timeout=0.5, quota_user_daily_usd="1")
    fake_openai.enqueue(fault)
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("tell me everything"), responder)
    assert len(responder.errors) == 1 and responder.replies == []
    prompt = prompt_tokens(fake_openai.chat_requests()[0]["messages"])
    cost = PriceTable.load().chat_cost(settings.chat_model, prompt, count_tokens(received))
    assert cost > 0
    assert [(cost_, state) for _, _, cost_, state in await ledger(url)] == [(cost, "settled")]


async def test_a_call_refused_before_running_still_costs_nothing(
    make_settings: Any, fake_openai: FakeOpenAI, url: str
) -> None:
    from tests.fakes.openai_server import ContextLengthExceeded, RateLimit, ServerError

    settings = make_settings(database_url=url, quota_user_daily_usd="1")
    fake_openai.enqueue(RateLimit(), ServerError(502), ContextLengthExceeded())
    async with open_engine(settings) as engine:
        for text in ("a", "b", "c"):
            await engine.handle(message(text), RecordingResponder())
    assert [(cost, state) for *_, cost, state in await ledger(url)] == [(0, "released")] * 3


@pytest.mark.parametrize(
    ("limits", "warned"),
    [({}, True), ({"quota_user_daily_usd": "1"}, False), ({"quota_team_monthly_usd": "50"}, False)],
    ids=["no-limit", "user-daily", "team-monthly"],
)
async def test_start_up_warns_in_one_line_when_no_budget_is_set(
    make_settings: Any, caplog: pytest.LogCaptureFixture, limits: dict[str, str], warned: bool
) -> None:
    caplog.set_level(logging.WARNING)
    async with open_engine(make_settings(**limits)):
        pass
    said = [r for r in caplog.records if r.levelno == logging.WARNING and "no budget is set" in r.getMessage()]
    assert len(said) == (1 if warned else 0)
    assert all("\n" not in r.getMessage() for r in said)


def test_the_example_env_sets_a_user_daily_and_a_team_monthly_limit() -> None:
    from bot.settings import load_settings

    example = Path(__file__).resolve().parents[3] / ".env.example"
    settings = load_settings(env_file=example, openai_api_key="k")
    assert settings.quota_user_daily_usd is not None and settings.quota_team_monthly_usd is not None


async def reserved_expiries(url: str) -> list[str]:
    """expires_at of every open reservation, read straight from the database."""
    sql = "SELECT expires_at FROM usage_ledger WHERE state = 'reserved' ORDER BY id"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return [row[0] for row in db.execute(sql)]
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [row[0] for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def never(_: float) -> None:
    """The sleep of a frozen process: it never wakes to renew."""
    await asyncio.Event().wait()


async def expiries_are(url: str, expected: list[str]) -> bool:
    return await reserved_expiries(url) == expected


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (in real time) for something the bot does in the background; fail after 30 s."""
    for _ in range(3000):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the bot did not get there in 30 s")


async def test_a_call_that_outlives_the_ttl_keeps_its_reservation_and_the_budget_holds(
    make_settings: Any, fake_openai: FakeOpenAI, url: str
) -> None:
    """Issue 15's reproduction: a team budget for one call, one call streaming past the TTL, one more call."""
    settings = make_settings(
        database_url=url, quota_team_monthly_usd="0.00005", max_output_tokens=20, reservation_ttl_seconds=60
    )
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    # Streams ~10 s: long enough that the four clock steps below happen while it runs, even on a busy machine.
    fake_openai.enqueue(Reply("slow " * 10, chunk_chars=5, delay_between_chunks=1.0))
    slow, other = RecordingResponder(), RecordingResponder()
    async with open_engine(settings, clock=clock, sleep=clock.sleep) as engine:
        turn = asyncio.create_task(engine.handle(message("a long one", user="u1"), slow))

        async def streaming() -> bool:
            return bool(fake_openai.chat_requests())

        await until(streaming)
        for _ in range(4):  # 80 s of the bot's time pass while the model streams
            clock.advance(seconds=20)
            expected = (clock() + timedelta(seconds=60)).isoformat()
            await until(functools.partial(expiries_are, url, [expected]))
        # The sweep runs on this call's reservation, finds the first still held, and refuses it.
        await engine.handle(message("and me?", user="u2", channel="c2"), other)
        await turn
        rows = await engine.store.ledger.ledger_rows("local")
    assert slow.replies == ["slow " * 10]
    [refused] = other.errors
    assert refused.startswith("The team has used $0.0000") and "of its $0.00005 monthly budget" in refused
    assert [state for *_, state in rows] == ["settled"]
    assert sum(cost for *_, cost, _ in rows) <= usd_to_nanos("0.00005")


async def test_a_holder_that_stopped_renewing_loses_its_hold_and_its_late_settle_is_recorded_and_refuses_more(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(env_file=None, quota_team_monthly_usd="0.00005", reservation_ttl_seconds=60)
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    charge = Charge("console", "local", "u1", "c1", "chat", "gpt-4.1-mini")
    async with opened(url) as store:
        frozen = Budget(store.ledger, settings, clock, holder="frozen:1", sleep=never)
        alive = Budget(store.ledger, settings, clock, holder="alive:2", sleep=clock.sleep)
        async with frozen.metered(charge, Units(), 30_000) as stalled:  # never renews: a frozen process
            clock.advance(seconds=61)
            # The sweep charges the lost hold its worst case, estimated (its request was sent); 20,000 still fits.
            async with alive.metered(replace(charge, user_id="u2"), Units(), 20_000) as bill:
                await bill.settle(Units(output_tokens=10), 20_000)
            caplog.set_level(logging.WARNING)
            # The provider billed it, past its worst case (a server that ignored the output cap): recorded.
            await stalled.settle(Units(output_tokens=5), 35_000)
        assert "further calls are refused until it resets" in caplog.text
        assert "team monthly $0.000055 of $0.00005" in caplog.text
        with pytest.raises(QuotaExceeded) as refused:
            async with alive.metered(replace(charge, user_id="u3"), Units(), 1):
                pass
        rows = await store.ledger.ledger_rows("local")
        totals = await store.ledger.totals("local", "u1", "2026-11-24", "2026-11")
    assert refused.value.message.startswith("The team has used $0.000055 of its $0.00005 monthly budget")
    assert [(cost, state) for *_, cost, state in rows] == [(35_000, "settled"), (20_000, "settled")]
    assert totals.team_month_nanos == 55_000 and totals.user_day_nanos == 35_000


async def test_forgetting_keeps_todays_spend_counting_and_works_any_number_of_times(
    make_settings: Any, fake_openai: FakeOpenAI, url: str
) -> None:
    settings = make_settings(database_url=url, quota_user_daily_images=1, quota_user_daily_usd="1")
    replies = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("/image a cat", user="ann"), replies)
        await engine.handle(message("hello", user="ann"), replies)
        for _ in range(2):  # forgetting twice in a day (and month) works, and is no way round the limit
            await engine.handle(message("/forget confirm", user="ann"), replies)
            refused = RecordingResponder()
            await engine.handle(message("/image another cat", user="ann"), refused)
            assert [e.split(";")[0] for e in refused.errors] == [
                "You've made 1 of your 1 images today (this asks for 1)"
            ]
        await engine.handle(message("/image a dog", user="bob"), replies)  # others are not touched
        day = engine.budget.periods().day
        usage = await engine.store.ledger.usage("local", day)
        ann = await engine.store.ledger.totals("local", "ann", day, day[:7])
    assert len(replies.files) == 2 and replies.errors == []
    assert sum(text.startswith("Done. Removed or pseudonymized") for text, _ in replies.texts) == 2
    forgotten = {row.user_id for row in usage} - {"bob"}
    assert len(forgotten) == 1 and all(u.startswith("forgotten-") for u in forgotten)  # no id left, a random one
    assert "ann" not in {row.user_id for row in usage}
    assert ann.user_day_images == 1 and ann.user_day_nanos == sum(r.cost_nanos for r in usage if r.user_id != "bob")


async def test_under_200_concurrent_calls_every_refusal_names_the_limit_that_refused_with_the_figures_it_saw(
    url: str,
) -> None:
    # Amounts under a cent are shown to the nano-dollar, so each refusal's arithmetic can be checked.
    settings = load_settings(env_file=None, quota_user_daily_usd="0.0009", quota_team_monthly_usd="0.005")
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    async with opened(url) as first, opened(url) as second:  # two connections, as two processes have
        budgets = [Budget(s.ledger, settings, clock, holder=f"p{i}:1") for i, s in enumerate((first, second))]
        refusals: list[str] = []

        async def call(i: int) -> None:
            charge = Charge("console", "local", f"u{i % 10}", "c1", "chat", "gpt-4.1-mini")
            try:
                async with budgets[i % 2].metered(charge, Units(), usd_to_nanos("0.0004")) as bill:
                    await asyncio.sleep(0)
                    await bill.settle(Units(output_tokens=1), usd_to_nanos("0.0003"))
            except QuotaExceeded as refused:
                refusals.append(refused.message)

        await asyncio.gather(*(call(i) for i in range(200)))
        spent = (await first.ledger.totals("local", "u0", "2026-11-24", "2026-11")).team_month_nanos
    figures = re.compile(
        r"^(?:You've used|The team has used) \$([\d.]+) of (?:your|its) \$([\d.]+) (daily|monthly) budget;"
        r".* This request needs up to \$([\d.]+)\.$"
    )
    kinds = set()
    for text in refusals:
        match = figures.match(text)
        assert match, text
        used, limit, kind, need = match.groups()
        kinds.add(kind)
        assert Decimal(used) + Decimal(need) > Decimal(limit), text  # the figures that decision saw refuse it
    assert kinds == {"daily", "monthly"} and len(refusals) > 100
    assert spent <= usd_to_nanos("0.005")


async def test_killed_with_a_stream_open_the_call_is_charged_its_worst_case_shown_as_estimated(
    fake_openai: FakeOpenAI, tmp_path: Path, url: str
) -> None:
    from tests.harness.console import bot_env, run_bot
    from tests.harness.faults import console_streaming

    env = {
        **bot_env(fake_openai, tmp_path),
        "DATABASE_URL": url,
        "QUOTA_USER_DAILY_USD": "1",
        "MEMORY_ENABLED": "false",
    }
    fake_openai.enqueue(Reply("a long answer that never finishes " * 40, chunk_chars=4, delay_between_chunks=0.05))
    proc, first = await console_streaming(env, tmp_path, b"tell me a long story\n")
    assert first
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    async with opened(url) as store:
        [(_, _, worst, state)] = await store.ledger.ledger_rows("local")
    assert state == "reserved" and worst > 0

    # The next start finds the dead process's reservation: its request had been sent, so the provider
    # may have billed all of it. It is charged its worst case, and /usage and the CLI say it is estimated.
    code, out, _ = await run_bot("console", stdin="/usage\n", env=env, cwd=tmp_path)
    assert code == 0 and f"{format_usd(worst)} of it estimated" in out
    code, out, _ = await run_bot("usage", "--team", "local", env=env, cwd=tmp_path)
    assert code == 0 and f"of which {format_usd(worst)} estimated" in out
    async with opened(url) as store:
        assert [(cost, state) for *_, cost, state in await store.ledger.ledger_rows("local")] == [(worst, "settled")]


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    """Several processes share a database on PostgreSQL; a SQLite deployment is one process (its in-flight
    counts live in memory: see test_conversations)."""
    async with fresh_database("postgres", tmp_path) as url:
        yield url


async def test_max_user_in_flight_holds_across_two_processes_on_one_database(
    make_settings: Any, fake_openai: FakeOpenAI, postgres_url: str
) -> None:
    url = postgres_url
    settings = make_settings(database_url=url, max_user_in_flight=1)
    fake_openai.enqueue(Reply("slow " * 20, chunk_chars=5, delay_between_chunks=0.2))  # streams ~4 s
    slow, again, other = RecordingResponder(), RecordingResponder(), RecordingResponder()
    async with open_engine(settings) as first, open_engine(settings) as second:
        first.budget.holder, second.budget.holder = "first:1", "second:2"
        turn = asyncio.create_task(first.handle(message("a long one", user="ann"), slow))

        async def streaming() -> bool:
            return bool(fake_openai.chat_requests())

        await until(streaming)
        await second.handle(message("/ask me too", user="ann", channel="c2"), again)  # the other process
        await second.handle(message("/ask and me", user="bob", channel="c3"), other)
        await turn
        after = RecordingResponder()
        await second.handle(message("/ask now?", user="ann", channel="c2"), after)
    assert again.errors == ["You already have 1 request running; please wait for them to finish."]
    assert slow.replies == ["slow " * 20] and other.replies == ["echo: and me"] and after.replies == ["echo: now?"]


@pytest.mark.parametrize("kind", ["audio", "embedding"])
async def test_a_process_killed_while_speech_or_an_embedding_runs_is_charged_the_worst_case_as_estimated(
    make_settings: Any, fake_openai: FakeOpenAI, kind: str
) -> None:
    settings = make_settings(quota_user_daily_usd="1", openai_timeout=60)
    async with open_engine(settings) as engine:
        # The call runs in a process that will have died when the bot next starts.
        engine.budget.holder = f"{socket.gethostname()}:999999999"
        if kind == "audio":
            fake_openai.enqueue_speech(Stall(30))
            call: asyncio.Task[Any] = asyncio.create_task(
                engine.handle(message("/speak good morning"), RecordingResponder())
            )
            path = "/v1/audio/speech"
        else:
            fake_openai.enqueue_embeddings(Stall(30))
            call = asyncio.create_task(engine.memory.embed_question(message("what did we decide?"), "decided?"))
            path = "/v1/embeddings"

        async def sent() -> bool:
            return bool(fake_openai.requests_to(path))

        await until(sent)
        [(reserved_kind, _, worst, state)] = await engine.store.ledger.ledger_rows("local")
        assert (reserved_kind, state) == (kind, "reserved") and worst > 0
        # The next start finds the dead process's reservation. Its request had reached the provider, which
        # may bill it: charged its worst case, marked estimated (never released as if nothing was spent).
        restarted = Budget(engine.store.ledger, settings, engine.budget.now, holder="restarted:1")
        assert await restarted.recover() == Recovered(estimated=1)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        rows = await engine.store.ledger.ledger_rows("local")
        [usage] = await engine.store.ledger.usage("local", engine.budget.periods().day)
    assert [(cost, state) for *_, cost, state in rows] == [(worst, "settled")]
    assert usage.estimated_nanos == usage.cost_nanos == worst


async def test_in_flight_claims_racing_from_two_processes_never_pass_the_limit(postgres_url: str) -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    async with opened(postgres_url) as first, opened(postgres_url) as second:
        ledgers = [first.ledger, second.ledger]

        async def claim(i: int) -> int | None:
            later = now + timedelta(seconds=60)
            return await ledgers[i % 2].claim_in_flight("slack", "T1", "ann", f"p{i % 2}:1", now, later, 3)

        leases = [lease for lease in await asyncio.gather(*(claim(i) for i in range(20))) if lease is not None]
        assert len(leases) == 3
        assert await claim(0) is None
        await first.ledger.release_in_flight(leases[0])
        again = await claim(1)
        assert again is not None and again not in leases
        # A crashed holder's lease lapses: past its expiry, its slot is taken again (with a new id).
        later = now + timedelta(seconds=61)
        taken = await second.ledger.claim_in_flight("slack", "T1", "ann", "p9:1", later, later, 3)
        assert taken is not None and taken not in [*leases, again]


async def test_a_turn_cancelled_while_its_opening_waits_for_the_database_gives_its_reservation_back(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """The opening's statements run on in the database's thread after the turn is cancelled: the reservation
    they write, marked sent, was left held and charged its worst case at expiry for a call never made."""
    path = tmp_path / "cancelled.sqlite3"
    settings = make_settings(database_url=f"sqlite:///{path}", quota_user_daily_usd="1")
    async with open_engine(settings) as engine:
        other = sqlite3.connect(path, isolation_level=None)  # another process holding the file's write lock
        other.execute("BEGIN IMMEDIATE")
        turn = asyncio.create_task(engine.handle(message("hello?"), RecordingResponder()))
        await asyncio.sleep(0.3)  # the opening now waits for the lock (busy timeout: 5 s)
        turn.cancel()
        await asyncio.sleep(0.05)
        other.execute("ROLLBACK")
        other.close()
        with pytest.raises(asyncio.CancelledError):
            await turn
        rows = await engine.store.ledger.ledger_rows("local")
        conversation = await engine.store.active_conversation(message("hello?").conversation_key, engine.budget.now())
        stored = [m.content for m in await engine.store.messages(conversation.id)]
    assert fake_openai.chat_requests() == []
    assert [(cost, state) for *_, cost, state in rows] == [(0, "released")]
    assert stored == ["hello?"]  # the question stays: a user's message is never lost


async def test_on_postgresql_a_turn_cancelled_while_its_opening_waits_for_a_lock_gives_its_reservation_back(
    make_settings: Any, fake_openai: FakeOpenAI, postgres_url: str
) -> None:
    """The opening is finished once its caller is cancelled (a statement cut short might have committed all the
    same), and the reservation it wrote is given back."""
    import asyncpg

    settings = make_settings(database_url=postgres_url, quota_user_daily_usd="1")
    fake_openai.enqueue(Reply("the first answer"))
    async with open_engine(settings) as engine:
        await engine.handle(message("first"), RecordingResponder())
        conversation = await engine.store.active_conversation(message("x").conversation_key, engine.budget.now())
        other = await asyncpg.connect(postgres_url)  # another process holding the conversation's row lock
        locking = other.transaction()
        await locking.start()
        await other.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", conversation.id)
        turn = asyncio.create_task(engine.handle(message("second?"), RecordingResponder()))
        await asyncio.sleep(0.3)  # the opening now waits for the lock
        turn.cancel()
        await asyncio.sleep(0.05)
        await locking.rollback()
        await other.close()
        with pytest.raises(asyncio.CancelledError):
            await turn
        rows = await engine.store.ledger.ledger_rows("local")
        stored = [m.content for m in await engine.store.messages(conversation.id)]
    assert len(fake_openai.chat_requests()) == 1
    assert sorted(state for *_, state in rows) == ["released", "settled"]
    assert [cost for *_, cost, state in rows if state == "released"] == [0]
    assert stored == ["first", "the first answer", "second?"]
