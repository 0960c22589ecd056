"""What a steady chat turn costs the database, counted (not timed): counts are deterministic, so the
budget of a turn cannot regress unnoticed."""

from __future__ import annotations

from typing import Any

from bot.app import open_engine
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message
from tests.harness.turn_cost import traced_turn, write_transactions


async def test_a_steady_chat_turn_with_a_budget_set_takes_at_most_8_statements_and_3_write_transactions(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(quota_user_daily_usd="1", quota_team_monthly_usd="100")
    replies = RecordingResponder()
    async with open_engine(settings) as engine:
        for i in range(3):
            await engine.handle(message(f"question {i}, to fill the history"), replies)
        turn = await traced_turn(engine, message("the fourth question"), replies)
    assert replies.errors == [] and len(replies.replies) == 4
    listing = "\n".join(f"{i}. {sql[:140]}" for i, sql in enumerate(turn, 1))
    assert len(turn) <= 8, listing
    assert write_transactions(turn) <= 3, listing
