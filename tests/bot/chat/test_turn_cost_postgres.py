"""What a chat turn costs PostgreSQL, counted (not timed): its round trips (each batch our process sends the server
and waits on) and its commits that wrote. Counts are deterministic, so the budget of a turn cannot regress
unnoticed (tests/bot/chat/test_turn_cost.py holds SQLite's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.app import open_engine
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message
from tests.harness.pg_wire import Wire, wire_to
from tests.harness.stores import fresh_database
from tests.harness.turn_cost import write_transactions


def _listing(wire: Wire) -> str:
    return "\n".join(f"{i}. {' '.join(sql.split())[:140]}" for i, sql in enumerate(wire.statements, 1))


async def test_a_steady_chat_turn_on_postgresql_with_a_budget_set_takes_at_most_6_round_trips_and_5_commits(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async with fresh_database("postgres", tmp_path) as url:
        replies = RecordingResponder()
        async with wire_to(urlsplit(url).port or 5432) as wire:
            # The wire is read as sent: no TLS on the loopback.
            settings = make_settings(
                database_url=f"{wire.url(url)}?sslmode=disable", quota_user_daily_usd="1", quota_team_monthly_usd="100"
            )
            async with open_engine(settings) as engine:
                for i in range(3):  # its statements are prepared on the connection by now, as in a running bot
                    await engine.handle(message(f"question {i}, to fill the history"), replies)
                async with wire.counting():
                    await engine.handle(message("the fourth question"), replies)
                steady = (wire.writes, write_transactions(wire.statements), _listing(wire))
                async with wire.counting():
                    await engine.handle(message("a first question", thread="another"), replies)
                first = (wire.writes, write_transactions(wire.statements), _listing(wire))
    assert replies.errors == [] and len(replies.replies) == 5
    writes, commits, listing = steady
    assert writes > 0 and commits > 0, "the wire read nothing: the counts below would hold for any turn"
    assert writes <= 6 and commits <= 5, f"{writes} writes, {commits} commits:\n{listing}"
    # A conversation's first turn starts it in the statement that would have read it: no trip more.
    writes, commits, listing = first
    assert writes <= 6 and commits <= 5, f"{writes} writes, {commits} commits:\n{listing}"
