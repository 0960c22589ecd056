"""Shared fixtures: a loopback fake OpenAI server, isolated settings, an engine on a temp database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.chat.engine import Engine
from bot.event_loop import loop_factory
from bot.providers.registry import KEY_VARIABLE
from bot.settings import Settings, load_settings
from storage import Store
from tests.fakes.openai_server import FakeOpenAI

# The Slack and Discord harness fixtures, for every test module that drives those adapters.
from tests.harness.discord import discord_bot  # noqa: F401
from tests.harness.slack import slack  # noqa: F401
from tests.harness.stores import fresh_database, opened


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any] | None:
    """The tests run on the event loop `python -m bot` runs on (bot/event_loop.py): uvloop where installed."""
    factory = loop_factory()
    return None if factory is None else {"uvloop": factory}


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting leaks in from the machine's environment or a developer's .env."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name in [n for n in os.environ if KEY_VARIABLE.match(n)]:  # PROVIDER_<NAME>_API_KEY
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'teambot.sqlite3'}"


@pytest.fixture
def make_settings(fake_openai: FakeOpenAI, db_url: str) -> Any:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "openai_api_key": "test-key-not-secret",
            "openai_base_url": fake_openai.base_url,
            "database_url": db_url,
            "openai_max_retries": 0,
            "openai_timeout": 5.0,
            # Tools change every prompt (definitions, the quoting rule): the tool tests switch them on.
            "fetch_enabled": False,
        }
        values.update(overrides)
        return load_settings(env_file=None, **values)

    return make


@pytest.fixture
def slack_overrides() -> dict[str, Any]:
    """More settings for the Slack harness (tests/harness/slack.py); a module that needs some overrides this."""
    return {}


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings()  # type: ignore[no-any-return]


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    async with open_engine(settings) as engine:
        yield engine


# The database-contract fixtures: a test taking `url` or `store` runs on SQLite and on PostgreSQL.
@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind, in turn."""
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    """A store opened on `url`."""
    async with opened(url) as store:
        yield store
