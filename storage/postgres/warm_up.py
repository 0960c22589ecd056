"""A serving process's pool connections, warmed at start: each runs a chat turn's statements once, in a transaction
rolled back, so asyncpg has them prepared and the server has planned them (and loaded the tables they touch) before
the first burst of turns. Without it, the first burst after a start pays for that on every connection it reaches:
200 first turns at once read ~2.1 times one alone right after start, ~1.8 in a process that had served a burst.

Nothing stays: every row is written under a name of its own (a random one) and rolled back. The statements are the
turn's own, built by the same code (OPEN_AND_ASK, the ledger's, `reply_statements`), so they are prepared as sent.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from storage.ledger_records import Charge, InFlightLease, Limits, ReservationRequest, Settlement, Units
from storage.postgres.database import render
from storage.postgres.ledger import CLAIM_IN_FLIGHT
from storage.postgres.turn_statements import OPEN_AND_ASK, TAKE_LEASE, joined
from storage.records import ConversationKey, NewMessage, TurnLease
from storage.sql.ledger import RESERVE, WITHIN_LIMITS, reserve_params, within_limits_params
from storage.sql.store import key_params, message_params

if TYPE_CHECKING:
    from storage.postgres.store import PostgresStore


async def warm(store: PostgresStore, pool: asyncpg.Pool) -> None:
    """Every connection of `pool` (all open: a serving pool keeps them) runs a turn's statements once, rolled back."""
    held = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        for conn in held:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await _turn(store, conn)
            finally:
                await transaction.rollback()
    finally:
        for conn in held:
            await pool.release(conn)


async def _turn(store: PostgresStore, conn: asyncpg.Connection) -> None:
    """A plain-text turn's statements, in the order a turn runs them, for a person, thread and team of no one's."""
    now, name = datetime.now(UTC), f"warm-up-{secrets.token_hex(8)}"
    key = ConversationKey("warm-up", name, name, "")
    later = (now + timedelta(minutes=1)).isoformat()
    [claim] = await conn.fetch(
        render(CLAIM_IN_FLIGHT), key.platform, key.team_id, name, name, now.isoformat(), 1, later
    )
    await conn.fetch(render(TAKE_LEASE), name, name, 60.0)
    asked = message_params(0, NewMessage("user", "", 1, now))[1:]
    [opened] = await conn.fetch(render(OPEN_AND_ASK), *key_params(key), True, 0, *asked, 1, now.isoformat())
    charge = Charge(key.platform, key.team_id, name, key.channel_id, "chat", name)
    request = ReservationRequest(charge, Units(), 0, "", "", Limits(), now, now, name, sent_at=now)
    [[reserved]] = await conn.fetch(render(RESERVE), *reserve_params(request))
    await conn.fetch(render(WITHIN_LIMITS), *within_limits_params(request))
    reply = NewMessage("assistant", "", 1, now)
    settlement = Settlement(int(reserved), Units(), 0, now)
    held = (TurnLease(name, name), InFlightLease(claim[1]))
    statements = store.reply_statements(opened[0], reply, settlement, held)
    sql, params = joined(statements, returning=2)
    await conn.fetch(render(sql), *params)
