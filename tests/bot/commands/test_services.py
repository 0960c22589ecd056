"""Commands run against the few services they use, not a whole engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import PLATFORMS
from bot.chat.channels import Channels
from bot.chat.engine import Engine
from bot.commands.catalog import command_registry
from bot.commands.services import CommandServices
from bot.dashboard.roles import Roles
from bot.errors import NotAllowed
from bot.settings import Settings, load_settings
from storage import Store, open_store
from tests.fakes.responder import RecordingResponder
from tests.harness.commands import run_command

NOON = datetime(2026, 12, 4, 12, tzinfo=UTC)


@pytest.fixture
def plain_settings(tmp_path: Path) -> Settings:
    return load_settings(env_file=None, openai_api_key="test-key-not-secret", database_url=f"sqlite:///{tmp_path}/t.db")


@pytest.fixture
async def sqlite_store(plain_settings: Settings) -> AsyncIterator[Store]:
    store = await open_store(plain_settings.database_url)
    try:
        yield store
    finally:
        await store.close()


async def run(services: CommandServices, text: str, *, admin: bool = False, channel: str = "c1") -> RecordingResponder:
    return await run_command(services, text, admin=admin, channel=channel)


@pytest.fixture
def channel_services(plain_settings: Settings, sqlite_store: Store) -> CommandServices:
    """Only what /persona uses: the channel settings on a real SQLite store."""
    return CommandServices(
        settings=plain_settings,
        commands=command_registry(),
        platforms=PLATFORMS,
        channels=Channels(sqlite_store, lambda: NOON),
    )


async def test_persona_is_set_and_shown_with_only_the_channel_settings(
    channel_services: CommandServices, sqlite_store: Store
) -> None:
    services = channel_services
    said = await run(services, "/persona set You answer in haiku.", admin=True)
    shown = await run(services, "/persona show")
    elsewhere = await run(services, "/persona show", channel="c2")

    assert said.texts[0][0].startswith("Persona set; new conversations in this channel use it")
    assert shown.texts == [("This channel's persona:\nYou answer in haiku.", False)]
    assert elsewhere.texts[0][0].startswith("This channel uses the default system prompt:")
    stored = await sqlite_store.channel_settings("console", "local", "c1")
    assert stored.persona == "You answer in haiku."


async def test_persona_change_by_a_member_is_refused_and_nothing_is_stored(
    channel_services: CommandServices, sqlite_store: Store
) -> None:
    services = channel_services
    with pytest.raises(NotAllowed, match="Only admins can change the persona"):
        await run(services, "/persona set Be rude.")

    assert (await sqlite_store.channel_settings("console", "local", "c1")).persona is None


async def test_help_needs_only_the_command_table(plain_settings: Settings) -> None:
    services = CommandServices(settings=plain_settings, commands=command_registry(prefix="tb-"), platforms=PLATFORMS)

    listed = (await run(services, "/help")).texts[0][0]

    assert "/tb-ask [voice=on|<voice>] <question>" in listed
    assert "Admins also have /tb-quota." in listed


async def test_a_service_left_out_of_the_context_says_so_when_used(plain_settings: Settings) -> None:
    services = CommandServices(settings=plain_settings, commands=command_registry(), platforms=PLATFORMS)

    with pytest.raises(LookupError, match=r"built without the service that has \.reset"):
        await run(services, "/reset")


async def test_a_clock_left_out_says_so_when_read(plain_settings: Settings) -> None:
    services = CommandServices(settings=plain_settings, commands=command_registry(), platforms=PLATFORMS)

    with pytest.raises(LookupError, match="the clock"):
        services.clock()


def test_the_engine_needs_every_service(plain_settings: Settings, tmp_path: Path) -> None:
    services = CommandServices(settings=plain_settings, commands=command_registry(), platforms=PLATFORMS)

    with pytest.raises(ValueError, match="missing: clock, conversations, prompts"):
        Engine(services=services, store=None, roles=Roles())  # type: ignore[arg-type]
