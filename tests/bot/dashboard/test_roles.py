"""The dashboard decides a visitor's role on each request, by asking the platform as the chat does."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient

from adapters.discord.adapter import DiscordAdapter, intents
from adapters.slack.adapter import SlackAdapter
from adapters.web.site import add_dashboard
from bot.app import open_engine
from tests.fakes.discord_api import ADMIN_ROLE, GUILD, FakeDiscord, logged_in_client
from tests.fakes.slack_api import FakeSlack
from tests.harness.clock import Clock
from tests.harness.dashboard import START, csrf_of, platform_roles, served, sign_in, use_link
from tests.harness.messages import message

CHANGE = {"scope": "team", "metric": "monthly", "amount": "25"}


async def admin_form_shown(client: TestClient[web.Request, web.Application]) -> bool:
    return "Change a limit" in await (await client.get("/dashboard/budgets")).text()


async def test_a_demoted_admin_loses_the_budgets_form_on_the_next_request(make_settings: Any) -> None:
    async with served(make_settings(port=8080, dashboard_session_hours=720)) as (engine, client):
        await sign_in(client, engine, user="boss", admin=True)
        page = await (await client.get("/dashboard/budgets")).text()
        assert "Change a limit" in page and "boss · admin" in page
        token = csrf_of(page)
        platform_roles(engine).says("local", "boss", admin=False)  # demoted on the platform
        page = await (await client.get("/dashboard/budgets")).text()
        assert "Change a limit" not in page and "boss · member" in page
        refused = await client.post("/dashboard/budgets", data={**CHANGE, "csrf": token})
        assert refused.status == 403 and await engine.store.ledger.limit_changes("local") == []
        assert "By user" not in await (await client.get("/dashboard")).text()
        platform_roles(engine).says("local", "boss", admin=True)  # and promoted again: no new link needed
        assert await admin_form_shown(client)


async def test_a_platform_this_process_does_not_serve_makes_the_visitor_a_member(make_settings: Any) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        link = await engine.signin.issue_link(message("/dashboard", user="U1", team="T1", admin=True, platform="slack"))
        assert (await use_link(client, link.split("8080", 1)[1])).status == 303
        assert not await admin_form_shown(client)


async def test_on_slack_the_role_is_users_info_s_as_the_chat_reads_it(make_settings: Any) -> None:
    async with FakeSlack() as api:
        api.users["UBOSS"] = {"is_admin": False}  # demoted after asking for the link
        settings = make_settings(slack_bot_token="xoxb-test", slack_signing_secret="s" * 32, port=8080)
        async with open_engine(settings, clock=Clock(START)) as engine:
            SlackAdapter(engine, settings, client=AsyncWebClient(token="xoxb-test", base_url=api.base_url))
            async with TestClient(TestServer(add_dashboard(web.Application(), engine))) as client:
                asked = message("/dashboard", user="UBOSS", team="T1", admin=True, platform="slack")
                link = await engine.signin.issue_link(asked)
                assert (await use_link(client, link.split("8080", 1)[1])).status == 303
                assert not await admin_form_shown(client)
                assert api.called("users.info")[-1]["user"] == "UBOSS"


async def test_on_discord_the_role_is_the_members_roles_now(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord() as api:
        monkeypatch.setattr(discord.http.Route, "BASE", api.base)
        settings = make_settings(discord_token="test.token.value", discord_admin_role=ADMIN_ROLE, port=8080)
        async with open_engine(settings, clock=Clock(START)) as engine:
            bot = await logged_in_client(intents())
            DiscordAdapter(engine, settings, bot, interval=0)
            try:
                async with TestClient(TestServer(add_dashboard(web.Application(), engine))) as client:
                    api.members["42"] = [ADMIN_ROLE]
                    asked = message("/dashboard", user="42", team=GUILD, admin=True, platform="discord")
                    link = await engine.signin.issue_link(asked)
                    assert (await use_link(client, link.split("8080", 1)[1])).status == 303
                    assert await admin_form_shown(client)
                    api.members["42"] = []  # the admin role taken away
                    assert not await admin_form_shown(client)
                    del api.members["42"]  # and gone from the server
                    assert not await admin_form_shown(client)
            finally:
                await bot.close()
