"""Budgets: atomic reservations, exact boundaries, rollovers, expiry, and the refusal message."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.billing.budget import Budget, Periods, QuotaExceeded, resolve_limits, until
from bot.billing.money import usd_to_nanos
from bot.settings import Settings, load_settings
from storage.ledger_records import Charge, Recovered, ReservationRequest, Units
from storage.sqlite import SQLiteStore
from tests.harness.clock import Clock


def quota_settings(**values: Any) -> Settings:
    return load_settings(env_file=None, **values)


def chat_charge(user: str = "u1", team: str = "t1") -> Charge:
    return Charge("console", team, user, "c1", "chat", "gpt-4.1-mini")


async def spend(budget: Budget, usd: str, *, user: str = "u1", reserve: str | None = None) -> None:
    """Reserve `reserve` (default: the same) and settle at `usd`."""
    async with budget.metered(chat_charge(user), Units(), usd_to_nanos(reserve or usd)) as bill:
        await bill.settle(Units(input_tokens=1), usd_to_nanos(usd))


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = await SQLiteStore.open(tmp_path / "ledger.sqlite3")
    yield store
    await store.close()


def totals_match_ledger(path: Path) -> None:
    """usage_totals (kept by triggers) equals the ledger's own sums, for every user-day and team-month."""
    with sqlite3.connect(path) as db:
        per_user = dict(
            ((team, user, day), cost)
            for team, user, day, cost in db.execute(
                "SELECT team_id, user_id, user_day, sum(cost_nanos) FROM usage_ledger GROUP BY 1, 2, 3"
            )
        )
        kept = dict(
            ((team, subject, period), cost)
            for team, subject, period, cost in db.execute(
                "SELECT team_id, subject, period, cost_nanos FROM usage_totals WHERE scope = 'user'"
            )
        )
        assert per_user == kept
        month = dict(db.execute("SELECT team_month, sum(cost_nanos) FROM usage_ledger GROUP BY 1").fetchall())
        kept_month = dict(db.execute("SELECT period, cost_nanos FROM usage_totals WHERE scope = 'team'").fetchall())
        assert month == kept_month


async def test_500_concurrent_reservations_never_cross_a_one_dollar_budget(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite3"
    # Two connections on one file, as two workers would have: the limit holds across both.
    stores = [await SQLiteStore.open(path), await SQLiteStore.open(path)]
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    settings = quota_settings(quota_team_monthly_usd="1.00")
    budgets = [Budget(s.ledger, settings, clock) for s in stores]
    outcomes: list[str] = []

    async def call(i: int) -> None:
        budget = budgets[i % 2]
        try:
            async with budget.metered(chat_charge(user=f"u{i % 7}"), Units(), usd_to_nanos("0.0037")) as bill:
                await asyncio.sleep(0)  # the "model call"
                if i % 5 == 0:
                    raise RuntimeError("model failed")  # released: charges nothing
                await bill.settle(Units(input_tokens=10), usd_to_nanos("0.0031"))
            outcomes.append("settled")
        except QuotaExceeded as refused:
            assert refused.message.startswith("The team has used $")
            assert "of its $1.00 monthly budget; it resets in 6 d 12 h (1 Dec 00:00 UTC)" in refused.message
            outcomes.append("refused")
        except RuntimeError:
            outcomes.append("failed")

    await asyncio.gather(*(call(i) for i in range(500)))
    for s in stores:
        await s.close()

    assert len(outcomes) == 500
    assert outcomes.count("refused") > 0 and outcomes.count("settled") > 0
    with sqlite3.connect(path) as db:
        spent = db.execute("SELECT sum(cost_nanos) FROM usage_ledger").fetchone()[0]
        states = dict(db.execute("SELECT state, count(*) FROM usage_ledger GROUP BY state").fetchall())
    assert spent <= usd_to_nanos("1.00")
    assert states.get("reserved", 0) == 0
    assert states["settled"] == outcomes.count("settled")
    assert states["released"] == outcomes.count("failed")
    assert spent == outcomes.count("settled") * usd_to_nanos("0.0031")
    totals_match_ledger(path)


async def test_a_call_that_exactly_reaches_the_limit_is_allowed_one_nano_more_is_not(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 24, 17, 48, tzinfo=UTC))
    budget = Budget(store.ledger, quota_settings(quota_user_daily_usd="0.50"), clock)
    await spend(budget, "0.49")
    await spend(budget, "0.01")  # exactly $0.50
    with pytest.raises(QuotaExceeded) as refused:
        async with budget.metered(chat_charge(), Units(), 1):
            pass
    assert refused.value.message == (
        "You've used $0.50 of your $0.50 daily budget; it resets in 6 h 12 min (00:00 UTC). "
        "This request needs up to $0.000000001."
    )


async def test_refusal_is_worded_for_the_user_with_what_is_left(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 24, 17, 48, tzinfo=UTC))
    budget = Budget(store.ledger, quota_settings(quota_user_daily_usd="0.50"), clock)
    await spend(budget, "0.49")
    with pytest.raises(QuotaExceeded) as refused:
        async with budget.metered(chat_charge(), Units(), usd_to_nanos("0.02")):
            pass
    assert refused.value.message == (
        "You've used $0.49 of your $0.50 daily budget; it resets in 6 h 12 min (00:00 UTC). "
        "This request needs up to $0.02."
    )


async def test_the_daily_budget_resets_at_midnight_and_the_month_on_the_first(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    settings = quota_settings(quota_user_daily_usd="1", quota_team_monthly_usd="1.50")
    budget = Budget(store.ledger, settings, clock)
    await spend(budget, "1.00")
    with pytest.raises(QuotaExceeded, match="daily budget"):
        await spend(budget, "0.10")
    clock.advance(minutes=1)  # 1 Dec 00:00: a new day and a new month
    await spend(budget, "1.00")
    clock.advance(hours=24)
    await spend(budget, "0.50")
    with pytest.raises(QuotaExceeded, match=r"The team has used \$1.50 of its \$1.50 monthly budget"):
        await spend(budget, "0.01", user="someone-else")


async def test_days_reset_at_midnight_in_the_quota_time_zone(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 24, 4, 30, tzinfo=UTC))  # 23:30 in New York, on the 23rd
    budget = Budget(store.ledger, quota_settings(quota_user_daily_usd="1", quota_timezone="America/New_York"), clock)
    await spend(budget, "1")
    with pytest.raises(QuotaExceeded) as refused:
        await spend(budget, "0.01")
    assert "it resets in 30 min (00:00 EST)" in refused.value.message
    clock.advance(minutes=30)
    await spend(budget, "0.01")


async def test_images_and_audio_minutes_are_limited_in_their_own_units(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    settings = quota_settings(quota_user_daily_images=3, quota_user_daily_audio_minutes="2.5")
    budget = Budget(store.ledger, settings, clock)
    image = Charge("console", "t1", "u1", "c1", "image", "gpt-image-1")
    async with budget.metered(image, Units(images=2), 0) as bill:
        await bill.settle(Units(images=2), 0)
    with pytest.raises(QuotaExceeded) as refused:
        async with budget.metered(image, Units(images=2), 0):
            pass
    assert refused.value.message.startswith("You've made 2 of your 3 images today (this asks for 2); it resets in 12 h")
    audio = Charge("console", "t1", "u1", "c1", "audio", "whisper-1")
    async with budget.metered(audio, Units(audio_ms=120_000), 0) as bill:
        await bill.settle(Units(audio_ms=120_000), 0)
    with pytest.raises(QuotaExceeded, match=r"You've transcribed 2 of your 2.5 audio minutes today \(this needs 1\)"):
        async with budget.metered(audio, Units(audio_ms=60_000), 0):
            pass


async def test_admin_overrides_beat_defaults_user_first(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    budget = Budget(store.ledger, quota_settings(quota_user_daily_usd="0.10"), clock)
    now = clock()
    await store.ledger.set_limit("t1", "*", "daily_usd", usd_to_nanos("0.20"), changed_by="admin", now=now)
    await store.ledger.set_limit("t1", "vip", "daily_usd", None, changed_by="admin", now=now)
    assert (await budget.limits_for("t1", "u1")).user_daily_nanos == usd_to_nanos("0.20")
    assert (await budget.limits_for("t1", "vip")).user_daily_nanos is None
    assert (await budget.limits_for("other-team", "u1")).user_daily_nanos == usd_to_nanos("0.10")
    await spend(budget, "5.00", user="vip")


async def test_a_failed_or_cancelled_call_releases_its_reservation(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    budget = Budget(store.ledger, quota_settings(quota_user_daily_usd="1"), clock)
    with pytest.raises(ValueError):
        async with budget.metered(chat_charge(), Units(), usd_to_nanos("0.9")):
            raise ValueError("boom")

    async def hang() -> None:
        async with budget.metered(chat_charge(), Units(), usd_to_nanos("0.9")):
            await asyncio.sleep(60)

    task = asyncio.create_task(hang())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [row[3] for row in await store.ledger.ledger_rows("t1")] == ["released", "released"]
    await spend(budget, "1.00")  # the whole budget is available again


async def test_reservations_left_by_a_crash_expire_by_age_and_on_start_up(store: SQLiteStore) -> None:
    clock = Clock(datetime(2026, 11, 24, 12, tzinfo=UTC))
    settings = quota_settings(quota_user_daily_usd="1", reservation_ttl_seconds=600)
    host = socket.gethostname()

    def stale(holder: str) -> ReservationRequest:
        budget = Budget(store.ledger, settings, clock)
        p = budget.periods()
        return ReservationRequest(
            chat_charge(), Units(), usd_to_nanos("0.6"), p.day, p.month,
            resolve_limits(settings, [], "u1"), clock(), clock() + timedelta(seconds=600), holder,
        )  # fmt: skip

    # A process on this host that no longer exists (pid far above pid_max) left one behind...
    assert await store.ledger.reserve(stale(f"{host}:999999999")) is not None
    # ...and a process elsewhere left another; only its age can free it.
    clock.advance(seconds=1)
    assert await store.ledger.reserve(stale("other-host:1234")) is None  # $1.20 > $1: refused already
    budget = Budget(store.ledger, settings, clock)
    assert await budget.recover() == Recovered(released=1)  # the dead local process's reservation (never sent)
    await spend(budget, "0.30")
    assert await store.ledger.reserve(stale("other-host:1234")) is not None
    with pytest.raises(QuotaExceeded):
        await spend(budget, "0.30")
    clock.advance(seconds=601)
    await spend(budget, "0.30")  # the first hold() after the TTL sweeps the expired one
    assert os.getpid() != 999999999


def test_periods_and_durations_read_naturally() -> None:
    from zoneinfo import ZoneInfo

    p = Periods.at(datetime(2026, 12, 31, 23, 0, tzinfo=UTC), ZoneInfo("UTC"))
    assert (p.day, p.month) == ("2026-12-31", "2026-12")
    assert p.month_resets_at == datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC"))
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert until(now + timedelta(hours=6, minutes=12), now) == "6 h 12 min"
    assert until(now + timedelta(days=3, hours=4, seconds=1), now) == "3 d 4 h"
    assert until(now + timedelta(seconds=5), now) == "1 min"


def test_a_budget_s_periods_follow_its_clock_across_local_midnights_and_back(store: SQLiteStore) -> None:
    """Worked out once a quota day: the day and month still change at QUOTA_TIMEZONE's midnight, also when the
    clock is set back (a test's clock, or an operator's)."""
    clock = Clock(datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC))  # 23:59:59 in Tokyo (UTC+9)
    budget = Budget(store.ledger, quota_settings(quota_timezone="Asia/Tokyo"), clock)
    assert (budget.periods().day, budget.periods().month) == ("2026-12-31", "2026-12")
    clock.advance(seconds=1)  # Tokyo's midnight: a new day and a new month
    assert (budget.periods().day, budget.periods().month) == ("2027-01-01", "2027-01")
    assert budget.periods().day_resets_at == datetime(2027, 1, 1, 15, tzinfo=UTC)
    clock.advance(hours=8, minutes=59, seconds=59)  # 08:59:59 UTC, still Jan 1 in Tokyo
    assert budget.periods().day == "2027-01-01"
    clock.now = datetime(2026, 12, 31, 14, 0, tzinfo=UTC)  # set back an hour before Tokyo's midnight
    assert (budget.periods().day, budget.periods().month) == ("2026-12-31", "2026-12")
    assert budget.periods(datetime(2027, 2, 1, tzinfo=UTC)).day == "2027-02-01"  # an explicit time wins
    assert budget.periods().day == "2026-12-31"


def test_a_missing_price_is_an_error_unless_the_model_is_declared_free(tmp_path: Path) -> None:
    from bot.billing.prices import NoPrice, PriceTable
    from bot.errors import ConfigError

    prices = PriceTable.load()
    with pytest.raises(NoPrice, match="No price for model llama3: add it to PRICES_FILE"):
        prices.chat_cost("llama3", 10, 10)
    assert PriceTable.load(free_models=frozenset({"llama3"})).chat_cost("llama3", 10, 10) == 0
    override = tmp_path / "prices.toml"
    override.write_text('[chat."gpt-4.1-mini"]\noutput = 2.00\n[chat."llama3"]\ninput = 0.01\noutput = 0.02\n')
    merged = PriceTable.load(override)
    assert merged.chat_cost("gpt-4.1-mini", 1_000_000, 1_000_000) == usd_to_nanos("2.40")  # input kept, output new
    assert merged.chat_cost("llama3", 1_000_000, 0) == usd_to_nanos("0.01")
    override.write_text('[chat."x"]\ninput = "cheap"\noutput = 1\n')
    with pytest.raises(ConfigError, match="bad entry chat"):
        PriceTable.load(override)
