"""Secrets never reach a log line."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.logs import REDACTED, RedactSecrets
from tests.fakes.openai_server import FakeOpenAI, InvalidKey, ServerError
from tests.harness.console import bot_env, run_bot


def test_a_secret_in_a_message_or_traceback_is_redacted() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key is %s", ("sk-abcdef123456",), None)
    try:
        raise RuntimeError("boom with sk-abcdef123456 inside")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecrets(["sk-abcdef123456"]).filter(record)
    assert record.getMessage() == f"key is {REDACTED}"
    assert record.exc_text is not None and "sk-abcdef123456" not in record.exc_text and REDACTED in record.exc_text


async def test_a_full_scenario_at_debug_logs_no_secret(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    env = bot_env(fake_openai, tmp_path)
    env.update(OPENAI_API_KEY="sk-live-very-secret-0123456789", LOG_LEVEL="DEBUG")
    fake_openai.enqueue(InvalidKey(), ServerError(500))
    code, out, err = await run_bot("console", stdin="hello\nagain\n/ask what?\n/usage\n/quota\n", env=env, cwd=tmp_path)
    assert code == 0
    assert "echo: what?" in out
    log = (tmp_path / "teambot.log").read_text()  # the console's log goes to a file, not between the lines
    assert "sk-live-very-secret-0123456789" not in out + err + log
    assert ("DEBUG" in log or "INFO" in log) and err == ""  # the log did run, in its file
    # The key reached the server, so the test would notice if it were logged.
    assert fake_openai.requests[0].headers["Authorization"] == "Bearer sk-live-very-secret-0123456789"
