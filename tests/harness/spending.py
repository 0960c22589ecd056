"""Many metered calls at once over several Budgets (as several processes would run them), for the ledger tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.billing.budget import Budget, QuotaExceeded
from storage.ledger_records import Charge, Units


async def spend_at_once(
    budgets: Sequence[Budget], calls: int, *, reserve: int, cost: int, fail_every: int, users: int, refusal: str
) -> list[str]:
    """`calls` chat calls at once, the i-th on budgets[i % len(budgets)] by user u{i % users}: each reserves
    `reserve` nanos and settles at `cost`, except every `fail_every`-th, whose model fails (released). Each
    call's outcome, in order: settled, refused (its message must contain `refusal`) or failed."""

    async def call(i: int) -> str:
        charge = Charge("slack", "T1", f"u{i % users}", "C1", "chat", "gpt-4.1-mini")
        try:
            async with budgets[i % len(budgets)].metered(charge, Units(), reserve) as bill:
                await asyncio.sleep(0)  # the "model call"
                if i % fail_every == 0:
                    raise RuntimeError("model failed")
                await bill.settle(Units(input_tokens=1), cost)
        except QuotaExceeded as refused:
            assert refusal in refused.message, refused.message
            return "refused"
        except RuntimeError:
            return "failed"
        return "settled"

    return list(await asyncio.gather(*(call(i) for i in range(calls))))


async def team_month_rows(url: str, team_id: str, month: str) -> list[int]:
    """The cost of each usage_totals row of a team's month, read straight from the database at `url` (SQLite keeps
    one; PostgreSQL spreads it over up to 16)."""
    query = "SELECT cost_nanos FROM usage_totals WHERE team_id = $1 AND scope = 'team' AND period = $2"
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return [int(r[0]) for r in db.execute(query.replace("$1", "?").replace("$2", "?"), (team_id, month))]
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return [int(r[0]) for r in await connection.fetch(query, team_id, month)]
    finally:
        await connection.close()
