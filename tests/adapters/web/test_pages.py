"""The dashboard's pages: spend equal to the operator CLI, budgets through /quota's path, the prompt library."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest

from bot.billing.money import format_usd, usd_to_nanos
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.harness.admin_cli import run_cli
from tests.harness.clock import Clock
from tests.harness.dashboard import START, csrf_of, served, sign_in
from tests.harness.dashboard_pages import saved_library
from tests.harness.messages import message


async def test_spend_figures_equal_the_usage_cli_for_the_same_team_and_period(
    make_settings: Any, fake_openai: FakeOpenAI, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.enqueue(
        Reply("a", prompt_tokens=1_000_000, completion_tokens=0),
        Reply("b", prompt_tokens=0, completion_tokens=500_000),
        Reply("c", prompt_tokens=1234, completion_tokens=567),
    )
    async with served(make_settings(port=8080)) as (engine, client):
        await engine.handle(message("x", user="ann"), RecordingResponder())
        await engine.handle(message("y", user="bob", channel="c2"), RecordingResponder())
        await engine.handle(message("z", user="ann", team="elsewhere"), RecordingResponder())
        await sign_in(client, engine, user="boss", admin=True)
        period = f"since={engine.now():%Y-%m}-01&until={engine.now():%Y-%m-%d}"
        page = await (await client.get(f"/dashboard?{period}")).text()
        csv = await (await client.get(f"/dashboard/spend.csv?{period}")).text()
        monkeypatch.setenv("DATABASE_URL", db_url)
        since, until = period.replace("since=", "").split("&until=")
        code, out, _ = await run_cli("usage", "--team", "local", "--since", since, "--until", until, "--format", "json")
        assert code == 0
        report = json.loads(out)
        _, cli_csv, _ = await run_cli("usage", "--team", "local", "--since", since, "--until", until, "--format", "csv")
        assert csv == cli_csv
        assert format_usd(usd_to_nanos(report["total_usd"])) in page
        for user in ("ann", "bob"):
            cost = sum(usd_to_nanos(r["cost_usd"]) for r in report["rows"] if r["user_id"] == user)
            assert f"<td>{user}</td><td class=num>{format_usd(cost)}</td>" in page
        chat = sum(usd_to_nanos(r["cost_usd"]) for r in report["rows"] if r["kind"] == "chat")
        assert f"<td>chat</td><td class=num>{format_usd(chat)}</td>" in page
        assert "<svg" in page and "Spend per day" in page


async def test_a_member_sees_only_their_own_spend(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply("a", prompt_tokens=1000), Reply("b", prompt_tokens=2000))
    async with served(make_settings(port=8080)) as (engine, client):
        await engine.handle(message("x", user="ann"), RecordingResponder())
        await engine.handle(message("y", user="bob"), RecordingResponder())
        await sign_in(client, engine, user="ann")
        csv = await (await client.get("/dashboard/spend.csv")).text()
        assert ",ann," in csv and ",bob," not in csv
        assert "By user" not in await (await client.get("/dashboard")).text()


async def test_bad_period_is_explained(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        await sign_in(client, engine, admin=True)
        response = await client.get("/dashboard?since=yesterday")
        assert response.status == 400 and "is not a day like" in await response.text()


async def test_a_budget_change_from_the_form_is_in_the_quota_audit_list(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        await sign_in(client, engine, user="boss", admin=True)
        token = csrf_of(await (await client.get("/dashboard/budgets")).text())
        for form in (
            {"scope": "user", "user": "ann", "metric": "daily", "amount": "0.75"},
            {"scope": "users", "metric": "images", "amount": "4"},
            {"scope": "team", "metric": "monthly", "amount": "$40"},
        ):
            response = await client.post("/dashboard/budgets", data={**form, "csrf": token})
            assert response.status == 200, await response.text()
        bad = await client.post(
            "/dashboard/budgets", data={"scope": "users", "metric": "daily", "amount": "lots", "csrf": token}
        )
        assert bad.status == 400 and "is not an amount in dollars" in await bad.text()
        page = await (await client.get("/dashboard/budgets")).text()
        assert (
            "boss: user ann daily budget default → $0.75" in page and "the team monthly budget default → $40.00" in page
        )
        responder = RecordingResponder()
        await engine.handle(message("/quota show", admin=True), responder)
        shown = responder.texts[0][0]
        assert "boss: user ann daily budget default → $0.75" in shown
        assert "boss: every user images per day default → 4 images" in shown
        reset = await client.post("/dashboard/budgets", data={"action": "reset", "scope": "user", "user": "ann",
                                                               "csrf": token})  # fmt: skip
        assert "back to the defaults" in await reset.text()


async def test_members_see_their_own_limits_and_spend_only_as_usage_shows_them(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(Reply("a", prompt_tokens=1000), Reply("b", prompt_tokens=2000))
    async with served(make_settings(port=8080, quota_user_daily_usd="0.50")) as (engine, client):
        await engine.handle(message("x", user="mo"), RecordingResponder())
        await engine.handle(message("y", user="bob"), RecordingResponder())
        for change in ("/quota set user bob daily 2", "/quota set users images 3"):
            await engine.handle(message(change, user="boss", admin=True), RecordingResponder())
        await sign_in(client, engine, user="mo")
        usage = RecordingResponder()
        await engine.handle(message("/usage", user="mo"), usage)
        budgets = await (await client.get("/dashboard/budgets")).text()
        spend = await (await client.get("/dashboard")).text()
        for line in usage.texts[0][0].splitlines():  # what /usage tells mo, word for word
            assert html.escape(line, quote=False) in budgets, line
        for page in (budgets, spend):
            # Another person's limit, the change log (/quota show is for admins) and, with no team budget set,
            # any team figure (/usage shows a member none).
            assert "bob" not in page and "boss" not in page and "Changes" not in page
            assert "Team spend" not in page and "Team budget" not in page
        # With a team budget, a member sees what is left of it, as /usage says it, and no more.
        await engine.handle(message("/quota set team monthly 50", user="boss", admin=True), RecordingResponder())
        usage = RecordingResponder()
        await engine.handle(message("/usage", user="mo"), usage)
        (left,) = [line for line in usage.texts[0][0].splitlines() if line.startswith("Team budget left")]
        assert left in await (await client.get("/dashboard/budgets")).text()
        spend = await (await client.get("/dashboard")).text()
        assert "Team budget left" in spend and "Team budget used" not in spend


async def test_the_prompt_pages_show_versions_runs_ratings_a_diff_and_a_comparison(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    clock = Clock(START)
    async with served(make_settings(port=8080), clock) as (engine, client):
        compared = await saved_library(engine, fake_openai, clock)
        await sign_in(client, engine, user="bob")
        library = await (await client.get("/dashboard/prompts")).text()
        assert '<a href="/dashboard/prompts/summary">summary</a>' in library and "v2" in library
        page = await (await client.get("/dashboard/prompts/summary")).text()
        assert "Summarize {text} in a {tone} tone." in page and "You are terse." in page
        assert "First &lt;b&gt;run&lt;/b&gt;." in page  # model output is text, never markup
        assert "4/5 by bob: clear &amp; short" in page
        assert f"/dashboard/prompts/summary/compare?runs={compared[0]},{compared[1]}" in page
        diff = await (await client.get("/dashboard/prompts/summary/diff?a=1&b=2")).text()
        assert '<span class="del">-Summarize {text} for a {tone} reader.</span>' in diff
        assert '<span class="add">+system: You are terse.</span>' in diff
        side = await (await client.get(f"/dashboard/prompts/summary/compare?runs={compared[0]},{compared[1]}")).text()
        assert "Left column." in side and "Right column." in side
        assert side.index("#2 · v1") < side.index("#3 · v2") and "inputs: text=notes, tone=dry" in side
        assert "/dashboard/prompts/summary/compare?runs=1," not in page  # the earlier single run is not part of it
        ticked = await client.get("/dashboard/prompts/summary/compare?run=1&run=3")
        assert ticked.status == 200 and "First &lt;b&gt;run" in await ticked.text()


async def test_prompt_pages_refuse_other_teams_prompts_and_bad_requests(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    clock = Clock(START)
    async with served(make_settings(port=8080), clock) as (engine, client):
        await saved_library(engine, fake_openai, clock)
        await sign_in(client, engine, user="eve", team="other")
        assert (await client.get("/dashboard/prompts/summary")).status == 400
        assert "summary" not in await (await client.get("/dashboard/prompts")).text()
        client.session.cookie_jar.clear()
        await sign_in(client, engine, user="bob")
        assert (await client.get("/dashboard/prompts/summary/compare?runs=1,999")).status == 400
        assert (await client.get("/dashboard/prompts/summary/compare?runs=x")).status == 400
        assert (await client.get("/dashboard/prompts/summary/diff?a=1&b=9")).status == 400
        assert (await client.get("/dashboard/prompts/summary/diff?a=zero&b=1")).status == 400
