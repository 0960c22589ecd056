"""QUOTA_USER_DAILY_SEARCHES: web searches as a ledger unit, limited per user per day, shown and set like images."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.billing.budget import Budget, QuotaExceeded
from bot.settings import load_settings
from storage import Store
from storage.ledger_records import Charge, Units
from tests.fakes.openai_server import CallTool, FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.fakes.web import FakeSearXNG
from tests.harness.admin_cli import run_cli
from tests.harness.messages import message
from tests.harness.store_contract import NOW
from tests.harness.stores import fresh_database, opened, schema_before

RESULTS = [{"title": "Teambot notes", "url": "https://example.com/notes", "content": "Version 2 adds tools."}]


@pytest.fixture
async def searx() -> AsyncIterator[FakeSearXNG]:
    async with FakeSearXNG(list(RESULTS)) as server:
        yield server


def search(query: str) -> Reply:
    return Reply("", tool_calls=(CallTool("web_search", {"query": query}),))


async def test_searches_past_the_daily_limit_are_refused_before_sending_and_the_turn_goes_on(
    make_settings: Any, fake_openai: FakeOpenAI, searx: FakeSearXNG
) -> None:
    fake_openai.enqueue(search("one"), search("two"), search("three"), Reply("From two searches: version 2."))
    replies = RecordingResponder()
    settings = make_settings(web_search_url=searx.base_url, fetch_enabled=False, quota_user_daily_searches=2)
    async with open_engine(settings) as engine:
        await engine.handle(message("dig"), replies)
        await engine.handle(message("/usage"), usage := RecordingResponder())
        rows = await engine.store.ledger.ledger_rows("local")
    assert searx.queries == ["one", "two"]  # the third was never sent
    assert replies.errors == [] and replies.replies == ["From two searches: version 2."]
    refused = fake_openai.chat_requests()[3]["messages"][-1]
    assert refused["role"] == "tool" and refused["content"].startswith("error: the search was refused, none was sent:")
    assert "You've used 2 of your 2 daily searches; it resets in " in refused["content"]
    assert [r for r in rows if r[0] == "search"] == [("search", "searxng", 0, "settled")] * 2
    [(text, private)] = usage.texts
    assert private
    assert "search $0.00 (2 searches)" in text and "0 of 2 searches" in text


async def test_a_search_that_fails_is_given_back_and_counts_nothing(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    async with FakeSearXNG() as gone:
        down = gone.base_url  # the instance is down from here on
    fake_openai.enqueue(search("down"), Reply("The search service is down."))
    settings = make_settings(web_search_url=down, fetch_enabled=False, quota_user_daily_searches=1)
    async with open_engine(settings) as engine:
        await engine.handle(message("dig"), RecordingResponder())
        rows = await engine.store.ledger.ledger_rows("local")
        totals = await engine.store.ledger.totals("local", "u1", engine.budget.periods().day, "x")
    assert [r for r in rows if r[0] == "search"] == [("search", "searxng", 0, "released")]
    assert totals.user_day_searches == 0


async def test_quota_sets_searches_per_user_and_for_everyone_and_shows_them(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    responder = RecordingResponder()
    async with open_engine(make_settings(quota_user_daily_searches=20)) as engine:
        for line in (
            "/quota set user bob searches 3",
            "/quota set users searches none",
            "/quota set user bob searches 2.5",
            "/quota show",
        ):
            await engine.handle(message(line, user="root", admin=True), responder)
        await engine.handle(message("/usage", user="bob"), bob := RecordingResponder())
        await engine.handle(message("/usage", user="ann"), ann := RecordingResponder())
    set_bob, set_all, shown = (text for text, _ in responder.texts)
    assert set_bob == "User bob: searches per day default → 3 searches."
    assert set_all == "Every user: searches per day default → unlimited."
    assert responder.errors == ["'2.5' is not a whole number of searches (or 'none' for unlimited)."]
    assert "searches 20;" in shown and "user bob: searches per day 3 searches" in shown
    assert "3 of 3 searches" in bob.texts[0][0]
    assert "searches" not in ann.texts[0][0]  # everyone's override: unlimited, so nothing is left to show


async def test_quota_on_the_command_line_sets_searches(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    code, out, _ = await run_cli("quota", "--by", "ops", "--team", "local", "set", "users", "searches", "50")
    assert (code, out) == (0, "[team local] Every user: searches per day default → 50 searches.\n")


async def test_the_reserving_statement_counts_searches_against_the_daily_limit(store: Store) -> None:
    await store.ledger.set_limit("T1", "u2", "daily_searches", 1, changed_by="admin", now=NOW)
    budget = Budget(store.ledger, load_settings(env_file=None, quota_user_daily_searches=2), lambda: NOW)

    async def one_search(user: str, settle: bool = True) -> str:
        try:
            async with budget.metered(
                Charge("slack", "T1", user, "C1", "search", "searxng"), Units(searches=1), 0
            ) as s:
                if settle:
                    await s.settle(Units(searches=1), 0)
        except QuotaExceeded as refused:
            return refused.message.split(";")[0]
        return "ok"

    assert [await one_search("u1") for _ in range(3)] == ["ok", "ok", "You've used 2 of your 2 daily searches"]
    assert await one_search("u2", settle=False) == "ok"  # released: given back
    assert [await one_search("u2") for _ in range(2)] == ["ok", "You've used 1 of your 1 daily searches"]
    totals = await store.ledger.totals("T1", "u1", budget.periods().day, budget.periods().month)
    assert (totals.user_day_searches, totals.user_day_nanos) == (2, 0)
    [row] = [r for r in await store.ledger.usage("T1", "2026-11-01") if r.user_id == "u1"]
    assert (row.kind, row.calls, row.searches, row.cost_nanos) == ("search", 2, 2, 0)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_ledger_from_before_searches_is_migrated_keeping_its_rows_totals_and_limits(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        await _migrate_up_to_searches(url)
        async with opened(url) as store:  # opening applies the searches migration
            budget = Budget(store.ledger, load_settings(env_file=None, quota_user_daily_images=3), lambda: NOW)
            totals = await store.ledger.totals("T1", "u1", "2026-11-24", "2026-11")
            assert (totals.user_day_images, totals.user_day_nanos, totals.user_day_searches) == (2, 500, 0)
            [limit] = await store.ledger.limit_overrides("T1")
            assert (limit.metric, limit.value) == ("daily_images", 5)
            charge = Charge("slack", "T1", "u1", "C1", "search", "searxng")
            async with budget.metered(charge, Units(searches=1), 0) as held:
                await held.settle(Units(searches=1), 0)
            await store.ledger.set_limit("T1", "u1", "daily_searches", 1, changed_by="a", now=NOW)
            with pytest.raises(QuotaExceeded, match="You've used 1 of your 1 daily searches"):
                async with budget.metered(charge, Units(searches=1), 0):
                    pass
            async with budget.metered(Charge("slack", "T1", "u1", "C1", "image", "m"), Units(images=1), 100) as img:
                await img.settle(Units(images=1), 100)  # the rebuilt triggers still count the older units
            totals = await store.ledger.totals("T1", "u1", "2026-11-24", "2026-11")
            assert (totals.user_day_images, totals.user_day_nanos, totals.user_day_searches) == (3, 600, 1)


async def _migrate_up_to_searches(url: str) -> None:
    """The schema of the release before searches, holding two settled image calls and an image limit."""
    async with schema_before(url, "tools_search_quota") as db:
        for _ in range(2):
            await db.execute(
                "INSERT INTO usage_ledger (platform, team_id, user_id, kind, model, state, cost_nanos, images,"
                " user_day, team_month, created_at, expires_at) VALUES ('slack', 'T1', 'u1', 'image', 'm',"
                f" 'settled', 250, 1, '2026-11-24', '2026-11', '{NOW.isoformat()}', '{NOW.isoformat()}')"
            )
        await db.execute(
            "INSERT INTO quota_limits (team_id, subject, metric, value) VALUES ('T1', '*', 'daily_images', 5)"
        )
