"""PostgreSQL spreads a team's month total over several usage_totals rows, so one team's concurrent calls do not
queue on one row's lock; every reader sums them (the spread under concurrency: tests/storage/test_store_contract.py).
Totals written before the spread keep counting, and limits hold to the nano across the rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.billing.budget import Budget, QuotaExceeded
from bot.settings import load_settings
from storage.ledger_records import Charge, Units
from tests.harness.spending import team_month_rows
from tests.harness.store_contract import NOW
from tests.harness.stores import fresh_database, opened, schema_before

DAY, MONTH = NOW.strftime("%Y-%m-%d"), NOW.strftime("%Y-%m")


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database("postgres", tmp_path) as url:
        yield url


def charge(user: str) -> Charge:
    return Charge("slack", "T1", user, "C1", "chat", "gpt-4.1-mini")


async def test_totals_kept_before_the_spread_keep_counting_to_the_nano(url: str) -> None:
    # The schema of the release before: one team-month row, holding what two settled calls cost.
    async with schema_before(url, "ledger_team_totals_spread") as db:
        for user in ("u1", "u2"):
            await db.execute(
                "INSERT INTO usage_ledger (platform, team_id, user_id, kind, model, state, cost_nanos, user_day,"
                " team_month, created_at, expires_at) VALUES ('slack', 'T1', $1, 'chat', 'm', 'settled', 300,"
                " $2, $3, $4, $4)",
                user,
                DAY,
                MONTH,
                NOW.isoformat(),
            )
    assert await team_month_rows(url, "T1", MONTH) == [600]

    # The team's limit leaves exactly 1,000 nanos: two calls of 500 fit, one nano more does not.
    settings = load_settings(env_file=None, quota_team_monthly_usd="0.0000016")
    async with opened(url) as store:
        budget = Budget(store.ledger, settings, lambda: NOW)
        assert (await store.ledger.totals("T1", "u1", DAY, MONTH)).team_month_nanos == 600
        for user in ("u1", "u3"):
            async with budget.metered(charge(user), Units(), 500) as bill:
                await bill.settle(Units(input_tokens=1), 500)
        with pytest.raises(QuotaExceeded, match="monthly budget"):
            async with budget.metered(charge("u4"), Units(), 1):
                pass
        totals = await store.ledger.totals("T1", "u1", DAY, MONTH)
    assert (totals.team_month_nanos, totals.user_day_nanos) == (1_600, 800)
    rows = await team_month_rows(url, "T1", MONTH)
    assert sum(rows) == 1_600 and 600 in rows  # the old row kept its sum; the new calls went beside it
