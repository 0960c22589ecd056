"""Running the bot as a real process (`python -m bot …`) against a fake model: the repository, its environment."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI, Reply

REPO = Path(__file__).resolve().parents[2]


async def run_bot(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    """Run `python -m bot ...` as a real process; returns (exit code, stdout, stderr)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_", "CHAT_"))}
    child_env["PYTHONPATH"] = str(REPO)
    child_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=child_env, cwd=cwd,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def bot_env(fake: FakeOpenAI, tmp_path: Path) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "test-key-not-secret",
        "OPENAI_BASE_URL": fake.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "OPENAI_MAX_RETRIES": "0",
        "FETCH_ENABLED": "false",  # as in the shared test settings: tools change every prompt
    }


async def there_and_back(
    fake: FakeOpenAI, other: FakeOpenAI, tmp_path: Path, provider: str, model: str, **env: str
) -> tuple[dict[str, str], list[str]]:
    """A real `python -m bot console --admin` session that moves its channel to `provider/model` (a second provider,
    served by `other`), says hello there, moves back to gpt-4.1-mini and says hello on `fake` (each answers "Hello
    from …"); `env` adds to the settings. Its settings and what it printed."""
    settings = bot_env(fake, tmp_path) | {
        "PROVIDERS": f"{provider}={other.base_url}",
        "ALLOWED_CHAT_MODELS": f"{provider}/{model}",
        "FREE_MODELS": f"{provider}/*",
        **env,
    }
    other.enqueue(Reply(f"Hello from {provider}."))
    fake.enqueue(Reply("Hello from OpenAI."))
    lines = f"/model set {provider}/{model}\nhello {provider}\n/model set gpt-4.1-mini\n/reset\nhello openai\n"
    code, out, err = await run_bot("console", "--admin", stdin=lines, env=settings, cwd=tmp_path)
    assert code == 0, err
    return settings, out.splitlines()
