"""Where the dashboard is served: beside /slack/events in Slack's HTTP mode, and on PORT for a console run."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp

from adapters.slack.adapter import run_slack
from bot.app import open_engine
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.harness.console import REPO, bot_env
from tests.harness.dashboard import free_port


async def test_slack_http_mode_serves_the_dashboard_on_the_same_port(make_settings: Any) -> None:
    port = free_port()
    async with FakeSlack() as api:
        settings = make_settings(
            slack_bot_token="xoxb-test", slack_signing_secret="s3cret", slack_api_url=api.base_url, port=port
        )
        async with open_engine(settings) as engine:
            stop = asyncio.Event()
            server = asyncio.create_task(run_slack(engine, settings, stop))
            try:
                async with aiohttp.ClientSession() as http:
                    for _ in range(400):  # until it listens (bounds the wait, asserts no timing)
                        try:
                            page = await http.get(f"http://127.0.0.1:{port}/dashboard", allow_redirects=False)
                            break
                        except aiohttp.ClientConnectionError:
                            await asyncio.sleep(0.05)
                    assert page.status == 303 and page.headers["Location"] == "/dashboard/signed-out"
                    unsigned = await http.post(f"http://127.0.0.1:{port}/slack/events", data=b"{}")
                    assert unsigned.status in (400, 401)  # Slack's endpoint, refusing an unsigned request
            finally:
                stop.set()
                await server


async def test_a_console_run_with_port_serves_the_dashboard_and_signs_in_from_its_link(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_", "CHAT_"))}
    env.update(bot_env(fake_openai, tmp_path), PYTHONPATH=str(REPO), PORT=str(port))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", "--admin", "--user", "ops",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"/dashboard\n")
        await proc.stdin.drain()
        link = ""
        while not link:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
            assert line, "the console exited without a link"
            link = next((w for w in line.split() if "/dashboard/login?token=" in w), "")
        assert link.startswith(f"http://localhost:{port}/")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            url = link.replace("localhost", "127.0.0.1")
            assert (await http.get(url)).status == 200
            signed = await http.post(url.split("?")[0], data={"token": url.split("token=")[1]})
            assert signed.status == 200 and str(signed.url).endswith("/dashboard")
            assert "ops · admin · console team local" in await signed.text()
    finally:
        proc.stdin.close()
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
