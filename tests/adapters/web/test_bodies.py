"""Hostile requests to the dashboard and to Slack's HTTP endpoint: a clear 4xx with no traceback, and a body
that stops half-way is cut off at REQUEST_BODY_SECONDS instead of holding the connection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.adapter import SlackAdapter
from bot.app import open_engine
from tests.fakes.slack_api import FakeSlack
from tests.harness.dashboard import csrf_of, link_for, served, sign_in
from tests.harness.slack import Harness
from tests.harness.slack import slack as slack_fixture

slack = slack_fixture

BAD_BODIES = {
    "multipart without a boundary": ("multipart/form-data", b"--x\r\ncontent-disposition: form-data\r\n\r\n1"),
    "multipart with broken framing": ("multipart/form-data; boundary=zz", b"--zz\r\nbroken\r\n\r\n--zz"),
    "a form that is not UTF-8": ("application/x-www-form-urlencoded", b"token=\xff\xfe&csrf=\xff"),
    "a form in a charset nobody knows": ("application/x-www-form-urlencoded; charset=nonsense", b"token=x"),
}


def no_traceback(caplog: pytest.LogCaptureFixture) -> bool:
    return not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("kind", list(BAD_BODIES))
async def test_a_body_that_is_not_a_form_gets_a_400_with_no_traceback(
    make_settings: Any, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    content_type, body = BAD_BODIES[kind]
    async with served(make_settings(port=8080)) as (engine, client):
        await link_for(engine)
        login = await client.post("/dashboard/login", data=body, headers={"Content-Type": content_type})
        assert login.status == 400 and "Set-Cookie" not in login.headers  # signed out: nobody needed
        await sign_in(client, engine, user="boss", admin=True)
        csrf_of(await (await client.get("/dashboard/budgets")).text())
        for path in ("/dashboard/budgets", "/dashboard/logout"):
            response = await client.post(path, data=body, headers={"Content-Type": content_type})
            assert response.status == 400, path
        assert (await client.get("/dashboard", allow_redirects=False)).status == 200  # still signed in
        assert await engine.store.ledger.limit_changes("local") == []
    assert no_traceback(caplog)


@pytest.mark.parametrize("version", ["99999999999999999999", "1" + "0" * 5000, "²", "v-1", "0"])
async def test_a_version_no_prompt_can_have_gets_a_400_with_no_traceback(
    make_settings: Any, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    async with served(make_settings(port=8080)) as (engine, client):
        await sign_in(client, engine, admin=True)
        for query in (f"a={version}&b=1", f"a=1&b={version}"):
            response = await client.get(f"/dashboard/prompts/p/diff?{query}")
            assert response.status == 400, query
    assert no_traceback(caplog)


async def half_a_body(port: int, path: str, headers: str = "") -> bytes:
    """Send a POST whose body stops half-way, and read what the server answers until it hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: 1000\r\n{headers}\r\ntoken=".encode()
        )
        await writer.drain()
        async with asyncio.timeout(30):  # a bound for a broken server, not a timing check
            return await reader.read()  # until the server closes the connection
    finally:
        writer.close()


async def test_a_body_that_stops_half_way_is_cut_off(make_settings: Any) -> None:
    async with served(make_settings(port=8080, request_body_seconds=1)) as (engine, client):
        port = client.port
        assert port is not None
        answered = await half_a_body(port, "/dashboard/login")
        assert answered.startswith(b"HTTP/1.1 408")
        await sign_in(client, engine)
        cookie = client.session.cookie_jar.filter_cookies(client.make_url("/dashboard"))["teambot_session"].value
        answered = await half_a_body(port, "/dashboard/budgets", f"Cookie: teambot_session={cookie}\r\n")
        assert answered.startswith(b"HTTP/1.1 408")


async def test_a_slack_request_whose_body_stops_half_way_is_cut_off(make_settings: Any) -> None:
    settings = make_settings(slack_bot_token="xoxb-test", slack_signing_secret="s" * 32, request_body_seconds=1)
    async with FakeSlack() as api, open_engine(settings) as engine:
        adapter = SlackAdapter(engine, settings, client=AsyncWebClient(token="xoxb-test", base_url=api.base_url))
        async with TestServer(adapter.web_app()) as server:
            assert server.port is not None
            answered = await half_a_body(server.port, "/slack/events", "X-Slack-Request-Timestamp: 1\r\n")
    assert answered.startswith(b"HTTP/1.1 408")


async def test_unsigned_slack_requests_do_not_grow_the_log_one_line_each(
    slack: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    import aiohttp

    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        for n in range(50):
            headers = {"X-Slack-Request-Timestamp": "x" * n, "Content-Type": "application/json"}
            async with session.post(f"http://127.0.0.1:{slack.port}/slack/events", data=b"{}", headers=headers) as r:
                assert r.status == 400
    refused = [r for r in caplog.records if r.name == "adapters.slack.signature" and r.levelno >= logging.INFO]
    assert len(refused) <= 2  # one summary a minute at most (two if the run straddles a minute)
