"""Helpers for the dashboard tests: an engine on a movable clock served by aiohttp's test server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from adapters.web.site import add_dashboard
from bot.app import open_engine
from bot.chat.engine import Engine
from bot.settings import Settings
from tests.fakes.responder import RecordingResponder
from tests.fakes.roles import PlatformRoles
from tests.harness.clock import Clock
from tests.harness.messages import message

START = datetime(2026, 12, 14, 12, tzinfo=UTC)


def free_port() -> int:
    """A port nothing listens on now, for a real server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def served(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[tuple[Engine, TestClient[web.Request, web.Application]]]:
    """An engine and a test client of the dashboard's routes; the console's roles are what `platform_roles` says."""
    async with open_engine(settings, clock=clock or Clock(START)) as engine:
        engine.roles.serve("console", PlatformRoles())
        async with TestClient(TestServer(add_dashboard(web.Application(), engine))) as client:
            yield engine, client


def platform_roles(engine: Engine) -> PlatformRoles:
    """The roles the console's "platform" gives people in `served` (a test promotes and demotes there)."""
    roles = engine.roles.source("console")
    assert isinstance(roles, PlatformRoles)
    return roles


async def link_for(engine: Engine, *, user: str = "ann", team: str = "local", admin: bool = False) -> str:
    """Ask for /dashboard as a person would (the platform making them an admin or not); the link's path and
    query (the host is the test server's)."""
    platform_roles(engine).says(team, user, admin=admin)
    responder = RecordingResponder()
    await engine.handle(message("/dashboard", user=user, team=team, admin=admin), responder)
    assert not responder.errors, responder.errors
    (text, private), *_ = responder.texts
    assert private
    url = next(word for word in text.split() if "/dashboard/login?token=" in word)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def use_link(client: TestClient[web.Request, web.Application], link: str) -> ClientResponse:
    """Open the link (it asks to continue), then continue: the sign-in's answer, not followed."""
    opened = await client.get(link)
    assert opened.status in (200, 403), opened.status
    token = link.split("token=", 1)[1]
    return await client.post("/dashboard/login", data={"token": token}, allow_redirects=False)


async def sign_in(
    client: TestClient[web.Request, web.Application],
    engine: Engine,
    *,
    user: str = "ann",
    team: str = "local",
    admin: bool = False,
) -> None:
    """Follow a fresh link, so the client holds a session cookie."""
    response = await use_link(client, await link_for(engine, user=user, team=team, admin=admin))
    assert response.status == 303, await response.text()


def csrf_of(page: str) -> str:
    """The form token in a page."""
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]
