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
