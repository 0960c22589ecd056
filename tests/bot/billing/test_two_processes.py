"""Two real bot processes (Slack HTTP mode) on one PostgreSQL database, 500 concurrent requests, a $1 budget."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import socket
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp

from bot.billing.money import usd_to_nanos
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_api import FakeSlack
from tests.harness.console import REPO
from tests.harness.stores import fresh_database, opened

SECRET = "two-process-secret"
REQUESTS = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ask(session: aiohttp.ClientSession, port: int, i: int) -> int:
    form = urllib.parse.urlencode({"team_id": "T1", "channel_id": "C1", "channel_name": "general",
                                   "user_id": f"U{i}", "command": "/ask", "text": f"question {i}",
                                   "trigger_id": f"tr{i}"}).encode()  # fmt: skip
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + form, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    async with session.post(f"http://127.0.0.1:{port}/slack/events", data=form, headers=headers) as response:
        return response.status


async def test_two_processes_never_spend_past_the_team_budget(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    # Every answer reports 99,000 output tokens (~$0.16 at gpt-4.1-mini's price): only a handful fit in $1.
    fake_openai.enqueue(*[Reply("ok", completion_tokens=99_000) for _ in range(REQUESTS)])
    async with fresh_database("postgres", tmp_path) as url, FakeSlack() as slack:
        ports = [free_port(), free_port()]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": "test-key",
               "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_MAX_RETRIES": "0", "DATABASE_URL": url,
               "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.base_url,
               "QUOTA_TEAM_MONTHLY_USD": "1", "MAX_CONTEXT_TOKENS": "200000", "MAX_OUTPUT_TOKENS": "100000",
               "SHUTDOWN_GRACE_SECONDS": "10"}  # fmt: skip
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", env={**env, "PORT": str(port)}, cwd=tmp_path,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            for port in ports
        ]  # fmt: skip
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
                await _until_healthy(session, ports)
                statuses = await asyncio.gather(*(ask(session, ports[i % 2], i) for i in range(REQUESTS)))
            assert statuses == [200] * REQUESTS  # every request acked
            await _until(lambda: _told(slack) == REQUESTS, seconds=120)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(proc.wait(), timeout=30) for proc in procs]
        assert codes == [0, 0]
        async with opened(url) as store:
            rows = await store.ledger.ledger_rows("T1")
    settled = [cost for _, _, cost, state in rows if state == "settled"]
    refused = [m for m in slack.called("chat.postEphemeral") if "monthly budget" in str(m["text"])]
    assert sum(cost for *_, cost, _ in rows) <= usd_to_nanos("1.00")
    assert len(settled) + len(refused) == REQUESTS  # every request answered or told it was refused
    assert 0 < len(settled) <= 6 and not any(state == "reserved" for *_, state in rows)


def _told(slack: FakeSlack) -> int:
    """Requests that got their outcome: an answer (the placeholder edited into "ok") or an ephemeral refusal."""
    answered = sum(1 for text in slack.messages.values() if text == "ok")
    return answered + len(slack.called("chat.postEphemeral"))


async def _until(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the bots did not finish in time"
        await asyncio.sleep(0.05)


async def _until_healthy(session: aiohttp.ClientSession, ports: list[int]) -> None:
    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline, "a bot process did not start"
            await asyncio.sleep(0.1)
