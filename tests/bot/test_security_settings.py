"""Start-up and operator settings that an attacker would lean on: a blank signing secret, the listening address,
library DEBUG logs full of message text, limits too large to store."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack.adapter import run_slack
from bot.chat.engine import Engine
from bot.errors import ConfigError
from bot.settings import load_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.responder import RecordingResponder
from tests.fakes.slack_api import FakeSlack
from tests.harness.console import bot_env, run_bot
from tests.harness.messages import message


@pytest.mark.parametrize("blank", ["", " ", "\t \n"])
def test_a_blank_slack_signing_secret_is_refused_at_start(blank: str) -> None:
    # Anyone can sign a request with an empty HMAC key.
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET: is blank"):
        load_settings(env_file=None, slack_bot_token="xoxb-x", slack_signing_secret=blank)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _reachable(host: str, port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://{host}:{port}/healthz") as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False


@pytest.mark.parametrize(("host", "on_other_address"), [("127.0.0.1", False), (None, True)])
async def test_http_mode_listens_on_host(
    make_settings: Any, engine: Engine, host: str | None, on_other_address: bool
) -> None:
    port = _free_port()
    extra = {"host": host} if host else {}
    async with FakeSlack() as api:  # the start checks the bot token (auth.test) before it listens
        settings = make_settings(
            slack_bot_token="xoxb-x", slack_signing_secret="s" * 32, port=port, slack_api_url=api.base_url, **extra
        )
        stop = asyncio.Event()
        served = asyncio.create_task(run_slack(engine, settings, stop))
        try:
            for _ in range(500):
                if await _reachable("127.0.0.1", port):
                    break
                await asyncio.sleep(0.01)
            assert await _reachable("127.0.0.1", port)
            assert await _reachable("127.0.0.2", port) is on_other_address  # another address of this machine
        finally:
            stop.set()
            await served


async def test_library_debug_lines_do_not_carry_message_text(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    env = bot_env(fake_openai, tmp_path)
    env.update(LOG_LEVEL="DEBUG")
    code, out, err = await run_bot("console", stdin="my prod password is zebra-4471-violet\n", env=env, cwd=tmp_path)
    assert code == 0 and "echo: my prod password is zebra-4471-violet" in out
    log = (tmp_path / "teambot.log").read_text()  # the console logs to its file
    assert "DEBUG bot" in log or "DEBUG adapters" in log or "DEBUG storage" in log or "INFO" in log
    assert "zebra-4471" not in err + log
    env.update(LIBRARY_LOG_LEVEL="DEBUG")  # asked for separately, the libraries speak
    code, _, err = await run_bot("console", stdin="hello again\n", env=env, cwd=tmp_path)
    assert code == 0 and "DEBUG aiosqlite" in (tmp_path / "teambot.log").read_text()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/quota set user u2 daily 99999999999", "99999999999 is more than the largest limit, $1,000,000"),
        ("/quota set team monthly 1e999999999", "1e999999999 is more than the largest limit, $1,000,000"),
        ("/quota set users images 99999999999", "99999999999 is more than the largest limit, 1,000,000 images"),
        ("/quota set user u2 audio 1e30", "1e30 is more than the largest limit, 1,000,000 minutes"),
        ("/quota set user u2 images 2.5", "'2.5' is not a whole number of images"),
        ("/quota set user u2 daily nan", "'nan' is not an amount in dollars"),
        ("/quota set user u2 daily " + "9" * 5000, "is more than the largest limit"),
    ],
)
async def test_quota_amounts_out_of_bounds_get_a_clear_answer(engine: Engine, line: str, error: str) -> None:
    responder = RecordingResponder()
    await engine.handle(message(line, admin=True), responder)
    assert len(responder.errors) == 1 and error in responder.errors[0], responder.errors
    ok = RecordingResponder()
    await engine.handle(message("/quota set user u2 daily 1000000", admin=True), ok)
    assert ok.errors == []
