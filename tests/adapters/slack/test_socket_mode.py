"""Slack in Socket Mode: bolt's real AsyncSocketModeHandler (slack-sdk's SocketModeClient) against the
loopback fake of apps.connections.open and its websocket; start-up failures as an operator meets them."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.slack.adapter import run_slack
from bot.app import open_engine
from bot.chat.engine import Engine
from bot.errors import ConfigError
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_socket import APP_TOKEN, BOT_TOKEN, FakeSlackSocket
from tests.harness.slack import until
from tests.harness.slack_socket_mode import closed_port


def event_body(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """An Events API body, as Socket Mode's events_api envelope carries it."""
    return {"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id,
            "event_time": 1, "event": event, "is_ext_shared_channel": False,
            "authorizations": [{"user_id": "UBOT", "is_bot": True, "team_id": "T1"}]}  # fmt: skip


def app_mention(text: str, ts: str) -> dict[str, Any]:
    return {"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C1", "event_ts": ts}


@pytest.fixture
async def socket_slack() -> AsyncIterator[FakeSlackSocket]:
    async with FakeSlackSocket() as fake:
        yield fake


async def serving(engine: Engine, settings: Any, stop: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(run_slack(engine, settings, stop))


async def test_socket_mode_acks_answers_and_survives_a_refresh(
    make_settings: Any, socket_slack: FakeSlackSocket, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, slack_api_url=socket_slack.base_url)
    stop = asyncio.Event()
    async with open_engine(settings) as engine:
        task = await serving(engine, settings, stop)
        await socket_slack.wait_for_connection()
        first = await socket_slack.send_envelope("events_api", event_body(app_mention("<@UBOT> hi", "7000.1"), "Ev1"))
        await until(lambda: "echo: hi" in socket_slack.messages.values())
        assert socket_slack.acked(first)

        await socket_slack.ask_to_reconnect()  # Slack recycles connections every few hours
        await socket_slack.wait_for_connection(2)
        again = await socket_slack.send_envelope(
            "events_api", event_body(app_mention("<@UBOT> hi", "7000.1"), "Ev1"), retry_attempt=1,
            retry_reason="timeout",
        )  # fmt: skip
        command = {"token": "t", "team_id": "T1", "channel_id": "C1", "channel_name": "general", "user_id": "U1",
                   "command": "/usage", "text": "", "trigger_id": "tr1",
                   "response_url": socket_slack.url("/response/usage")}  # fmt: skip
        slash = await socket_slack.send_envelope("slash_commands", command)
        await until(lambda: bool(socket_slack.responses))
        await until(lambda: socket_slack.acked(again) and socket_slack.acked(slash))
        assert socket_slack.responses[0]["text"].startswith("Today: $0.00")
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(fake_openai.chat_requests()) == 1  # the redelivery was acked, not answered again
    assert [c.method for c in socket_slack.calls].count("apps.connections.open") == 2  # start, then the refresh


@pytest.mark.parametrize(
    ("tokens", "named", "error"),
    [
        ({"slack_app_token": "xapp-1-wrong"}, "SLACK_APP_TOKEN", "invalid_auth"),
        ({"slack_app_token": BOT_TOKEN}, "SLACK_APP_TOKEN holds a bot token", "xapp-"),
        ({"slack_bot_token": "xoxb-revoked"}, "SLACK_BOT_TOKEN", "invalid_auth"),
    ],
    ids=["wrong-app-token", "bot-token-as-app-token", "wrong-bot-token"],
)
async def test_a_refused_token_is_one_clear_line_naming_the_variable(
    make_settings: Any, socket_slack: FakeSlackSocket, tokens: dict[str, str], named: str, error: str
) -> None:
    values = {"slack_bot_token": BOT_TOKEN, "slack_app_token": APP_TOKEN, **tokens}
    settings = make_settings(slack_api_url=socket_slack.base_url, **values)
    async with open_engine(settings) as engine:
        with pytest.raises(ConfigError) as refused:
            await asyncio.wait_for(run_slack(engine, settings, asyncio.Event()), 10)
    message = str(refused.value)
    assert named in message and error in message and "\n" not in message
    assert values["slack_app_token"] not in message and values["slack_bot_token"] not in message


async def test_the_app_token_is_checked_before_a_bot_token_in_it_reaches_slack(
    make_settings: Any, socket_slack: FakeSlackSocket
) -> None:
    settings = make_settings(slack_bot_token=BOT_TOKEN, slack_app_token=BOT_TOKEN, slack_api_url=socket_slack.base_url)
    async with open_engine(settings) as engine:
        with pytest.raises(ConfigError):
            await run_slack(engine, settings, asyncio.Event())
    assert "apps.connections.open" not in [c.method for c in socket_slack.calls]


async def test_while_slack_is_unreachable_the_start_retries_quietly_and_stops_at_once(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/"
    settings = make_settings(slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, slack_api_url=url)
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    async with open_engine(settings) as engine:
        task = asyncio.create_task(run_slack(engine, settings, stop))
        await until(lambda: sum("Slack unreachable" in r.getMessage() for r in caplog.records) >= 2)
        stop.set()  # SIGTERM, as bot.app turns it into the adapters' stop
        await asyncio.wait_for(task, 5)
    tries = [r for r in caplog.records if "Slack unreachable" in r.getMessage()]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in tries)
    assert "retrying in 1 s" in tries[0].getMessage() and "retrying in 2 s" in tries[1].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_websocket_that_cannot_be_reached_is_retried_with_one_warning_a_try(
    make_settings: Any, socket_slack: FakeSlackSocket, caplog: pytest.LogCaptureFixture
) -> None:
    socket_slack.socket_url = f"ws://127.0.0.1:{closed_port()}/socket"
    settings = make_settings(slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, slack_api_url=socket_slack.base_url)
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    async with open_engine(settings) as engine:
        task = asyncio.create_task(run_slack(engine, settings, stop))
        await until(lambda: any("Slack Socket Mode: ClientConnectorError" in r.getMessage() for r in caplog.records))
        stop.set()
        await asyncio.wait_for(task, 5)
    tries = [r for r in caplog.records if r.name == "adapters.slack.socket_mode" and r.levelno >= logging.WARNING]
    assert tries and all(r.levelno == logging.WARNING and r.exc_info is None for r in tries)


async def bot_process(tmp_path: Any, **env: str) -> asyncio.subprocess.Process:
    """`python -m bot` as an operator starts it, with Slack settings in the environment."""
    values = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "test-key-not-secret", "MEMORY_ENABLED": "false",
              "OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1",
              "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}", **env}  # fmt: skip
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=values, stderr=asyncio.subprocess.PIPE
    )


async def test_sigterm_while_slack_is_unreachable_exits_0(tmp_path: Any) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/"
    bot = await bot_process(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=url)
    assert bot.stderr is not None
    seen: list[str] = []
    while not any("Slack unreachable" in line for line in seen):  # the start is retrying
        line = await asyncio.wait_for(bot.stderr.readline(), 60)
        assert line, f"the bot ended: {seen}"
        seen.append(line.decode())
    bot.send_signal(signal.SIGTERM)
    rest = await asyncio.wait_for(bot.stderr.read(), 30)
    assert await bot.wait() == 0
    assert "Traceback" not in "".join(seen) + rest.decode()


async def test_a_wrong_app_token_stops_the_bot_with_one_line(socket_slack: FakeSlackSocket, tmp_path: Any) -> None:
    bot = await bot_process(
        tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="xapp-1-wrong", SLACK_API_URL=socket_slack.base_url
    )
    assert bot.stderr is not None
    errors = (await asyncio.wait_for(bot.stderr.read(), 60)).decode()
    assert await bot.wait() == 2
    assert errors.splitlines()[-1].startswith("Slack refused SLACK_APP_TOKEN (invalid_auth).")
    assert "Traceback" not in errors and "xapp-1-wrong" not in errors
