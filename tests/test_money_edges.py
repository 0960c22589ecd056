"""Money exact at the edges of a call's life (issue 15), on SQLite and PostgreSQL: a stream cut
mid-way, a read timeout and an empty reply are charged what the provider ran; a call that outlives
the reservation TTL keeps its hold; refusals quote the figures their decision saw."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.billing.prices import PriceTable
from tests.conftest import message
from tests.fakes.openai_server import DropMidStream, FakeOpenAI, Reply, Scripted, Stall, count_tokens, prompt_tokens
from tests.fakes.responder import RecordingResponder
from tests.stores import fresh_database, opened


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


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

    example = Path(__file__).resolve().parents[1] / ".env.example"
    settings = load_settings(env_file=example, openai_api_key="k")
    assert settings.quota_user_daily_usd is not None and settings.quota_team_monthly_usd is not None
