"""Signing in to the dashboard: one-time links that expire, sessions scoped to a team and a role, forgeries refused."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.chat.engine import Engine
from tests.fakes.responder import RecordingResponder
from tests.harness.clock import Clock
from tests.harness.dashboard import START, csrf_of, link_for, served, sign_in, use_link
from tests.harness.messages import message


async def test_a_link_signs_in_once_with_a_safe_cookie_and_leaves_the_address_bar(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        responder = RecordingResponder()
        await engine.handle(message("/dashboard", user="ann"), responder)
        ((text, private),) = responder.texts
        assert private and "http://localhost:8080/dashboard/login?token=" in text and "10 minutes" in text
        link = await link_for(engine)
        for _ in range(2):  # opening the link (a chat app's preview does) shows who it is for and uses nothing
            opened = await client.get(link)
            assert opened.status == 200 and "Sign in as <strong>ann</strong>, a member of console team local" in (
                await opened.text()
            )
            assert "Set-Cookie" not in opened.headers
        response = await use_link(client, link)
        assert response.status == 303 and response.headers["Location"] == "/dashboard"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # http://localhost: a Secure cookie would never come back
        page = await client.get("/dashboard")
        assert page.status == 200 and "Spend" in await page.text()
        again = await use_link(client, link)
        assert again.status == 403 and "expired or was already used" in await again.text()
        assert (await client.get(link)).status == 403


async def test_behind_https_the_cookie_is_secure(make_settings: Any) -> None:
    async with served(make_settings(public_url="https://bot.example.com/")) as (engine, client):
        link = await link_for(engine)
        responder = RecordingResponder()
        await engine.handle(message("/dashboard"), responder)
        assert "https://bot.example.com/dashboard/login?token=" in responder.texts[0][0]
        response = await use_link(client, link)
        assert "Secure" in response.headers["Set-Cookie"]


async def test_a_link_expires_after_ten_minutes(make_settings: Any) -> None:
    clock = Clock(START)
    async with served(make_settings(port=8080), clock) as (engine, client):
        fresh, stale = await link_for(engine), await link_for(engine, user="bob")
        clock.advance(minutes=9, seconds=59)
        assert (await use_link(client, fresh)).status == 303
        clock.advance(seconds=2)
        client.session.cookie_jar.clear()
        assert (await client.get(stale)).status == 403
        response = await use_link(client, stale)
        assert response.status == 403 and "Set-Cookie" not in response.headers


async def test_another_site_cannot_post_a_sign_in(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        token = (await link_for(engine)).split("token=")[1]
        response = await client.post(
            "/dashboard/login", data={"token": token}, headers={"Origin": "https://evil.example"}, allow_redirects=False
        )
        assert response.status == 403 and "Set-Cookie" not in response.headers
        sandboxed = await client.post("/dashboard/login", data={"token": token}, headers={"Origin": "null"})
        assert sandboxed.status == 403
        assert (await client.post("/dashboard/login", data={"token": "made-up"})).status == 403
        own = await client.post(
            "/dashboard/login", data={"token": token}, headers={"Origin": str(client.make_url("/"))[:-1]},
            allow_redirects=False,
        )  # fmt: skip
        assert own.status == 303


async def test_a_session_ends_after_its_hours(make_settings: Any) -> None:
    clock = Clock(START)
    async with served(make_settings(port=8080, dashboard_session_hours=2), clock) as (engine, client):
        await sign_in(client, engine)
        clock.advance(hours=1, minutes=59)
        assert (await client.get("/dashboard", allow_redirects=False)).status == 200
        clock.advance(minutes=2)
        response = await client.get("/dashboard", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/dashboard/signed-out"


async def test_without_a_session_pages_say_how_to_sign_in_and_downloads_and_posts_get_401(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (_, client):
        for path in ("/dashboard", "/dashboard/budgets", "/dashboard/prompts", "/dashboard/prompts/x/diff?a=1&b=2"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 303 and response.headers["Location"] == "/dashboard/signed-out", path
        explained = await client.get("/dashboard/signed-out")
        assert "Type /dashboard in the chat" in await explained.text()
        assert (await client.get("/dashboard/spend.csv")).status == 401
        refused = await client.post("/dashboard/budgets", data={"scope": "team", "metric": "monthly", "amount": "0"})
        assert refused.status == 401


async def forged(client: TestClient[web.Request, web.Application], cookie: str, path: str = "/dashboard") -> int:
    client.session.cookie_jar.clear()
    response = await client.get(path, headers={"Cookie": f"teambot_session={cookie}"}, allow_redirects=False)
    return response.status


async def test_forged_cookies_open_nothing(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        link = await link_for(engine)
        token = link.split("token=")[1]
        assert await forged(client, token) == 303  # a link's token is not a session
        assert await forged(client, "A" * 43) == 303
        assert await forged(client, "x" * 5000) in (303, 400)
        assert await forged(client, "", "/dashboard/spend.csv") == 401


async def test_a_session_shows_only_its_own_team(make_settings: Any, fake_openai: Any) -> None:
    from tests.fakes.openai_server import Reply

    fake_openai.enqueue(Reply("hi", prompt_tokens=1000, completion_tokens=100))
    async with served(make_settings(port=8080)) as (engine, client):
        await engine.handle(message("hello", user="ann-of-alpha", team="alpha"), RecordingResponder())
        await sign_in(client, engine, user="boss", team="beta", admin=True)
        page = await (await client.get("/dashboard")).text()
        csv = await (await client.get("/dashboard/spend.csv")).text()
        assert "ann-of-alpha" not in page and "ann-of-alpha" not in csv
        assert csv.count("\n") == 1  # the header only
        client.session.cookie_jar.clear()
        await sign_in(client, engine, user="chief", team="alpha", admin=True)
        assert "ann-of-alpha" in await (await client.get("/dashboard/spend.csv")).text()


async def test_members_see_limits_without_a_form_and_their_posts_are_refused(make_settings: Any) -> None:
    async with served(make_settings(port=8080, quota_user_daily_usd="0.50")) as (engine, client):
        await sign_in(client, engine, user="mo", admin=False)
        page = await (await client.get("/dashboard/budgets")).text()
        assert "$0.50" in page and "Change a limit" not in page
        token = csrf_of(page)  # the sign-out form's: a valid token of this session
        response = await client.post(
            "/dashboard/budgets", data={"csrf": token, "scope": "team", "metric": "monthly", "amount": "1000"}
        )
        assert response.status == 403
        assert await engine.store.ledger.limit_changes("local") == []


async def test_a_post_without_the_sessions_form_token_changes_nothing(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        await sign_in(client, engine, user="other", admin=True)
        other_token = csrf_of(await (await client.get("/dashboard/budgets")).text())
        client.session.cookie_jar.clear()
        await sign_in(client, engine, user="boss", admin=True)
        change = {"scope": "team", "metric": "monthly", "amount": "25"}
        assert (await client.post("/dashboard/budgets", data=change)).status == 403
        assert (await client.post("/dashboard/budgets", data={**change, "csrf": other_token})).status == 403
        assert (await client.post("/dashboard/budgets", data={**change, "csrf": "0" * 64})).status == 403
        assert await engine.store.ledger.limit_changes("local") == []
        token = csrf_of(await (await client.get("/dashboard/budgets")).text())
        done = await client.post("/dashboard/budgets", data={**change, "csrf": token})
        assert done.status == 200 and "The team: monthly budget default → $25.00." in await done.text()
        (recorded,) = await engine.store.ledger.limit_changes("local")
        assert recorded.changed_by == "boss" and recorded.new_value == 25_000_000_000


async def test_signing_out_ends_the_session(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        await sign_in(client, engine)
        page = await (await client.get("/dashboard")).text()
        cookie = client.session.cookie_jar.filter_cookies(client.make_url("/dashboard"))["teambot_session"].value
        out = await client.post("/dashboard/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
        assert out.status == 303 and out.headers["Location"] == "/dashboard/signed-out"
        assert await forged(client, cookie) == 303


async def test_forget_signs_the_person_out_of_the_dashboard_and_voids_their_links(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        await sign_in(client, engine, user="bobby")
        unused = await link_for(engine, user="bobby")
        assert "bobby" in await (await client.get("/dashboard")).text()
        responder = RecordingResponder()
        await engine.handle(message("/forget confirm", user="bobby"), responder)
        ((said, private),) = responder.texts
        assert private and "2 dashboard sign-ins" in said
        response = await client.get("/dashboard", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/dashboard/signed-out"
        assert (await use_link(client, unused)).status == 403


async def test_dashboard_says_how_to_turn_it_on_when_not_served(engine: Engine) -> None:
    responder = RecordingResponder()
    await engine.handle(message("/dashboard"), responder)
    assert responder.errors and "PORT" in responder.errors[0]
    assert not responder.texts
