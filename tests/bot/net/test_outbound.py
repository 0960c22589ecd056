"""Outbound fetches (provider image links; later the web tool): public addresses only unless allowed, each
redirect checked, one total deadline, and one generic sentence for people whatever went wrong."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.app import open_engine
from bot.net.addresses import AllowedHosts, is_public
from bot.net.outbound import FetchFailed, FetchPolicy, fetch
from bot.settings import load_settings
from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_server import TINY_PNG, FakeOpenAI
from tests.fakes.responder import RecordingResponder
from tests.harness.media import ledger
from tests.harness.messages import message

NOT_FETCHED = "The image was drawn but could not be fetched: the image link could not be downloaded. Please try again."


class ImageHost(LoopbackServer):
    """An HTTP server with an image, redirects to anywhere, and a body sent one byte at a time."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        super().__init__(web.Application())
        self.app.router.add_get("/{name}", self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        if request.path == "/to":
            raise web.HTTPFound(request.query["url"])
        if request.path == "/trickle":  # a byte every 0.3 s, for ever (as a server stalling on purpose would)
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            await response.prepare(request)
            for byte in TINY_PNG * 100:
                await response.write(bytes([byte]))
                await asyncio.sleep(0.3)
            return response
        return web.Response(body=TINY_PNG, content_type="image/png")


@pytest.fixture
async def host() -> AsyncIterator[ImageHost]:
    async with ImageHost() as server:
        yield server


def policy(allowed: str = "", deadline: float = 5.0) -> FetchPolicy:
    return FetchPolicy(AllowedHosts.parse(allowed), max_bytes=2**20, deadline=deadline)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.100.100.200",
     "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00:ec2::254", "ff02::1",
     "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "2001:db8::1", "2001::1"],
)  # fmt: skip
def test_loopback_private_link_local_cgnat_multicast_reserved_and_metadata_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{port}/a.png", "http://localhost:{port}/a.png", "http://[::1]:{port}/a.png",
     "http://10.255.255.1/a.png", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:{port}/a.png",
     "http://2130706433:{port}/a.png", "file:///etc/passwd", "ftp://127.0.0.1/a.png"],
)  # fmt: skip
async def test_internal_addresses_and_other_schemes_are_refused_before_connecting(host: ImageHost, url: str) -> None:
    with pytest.raises(FetchFailed):
        await fetch(url.format(port=host.port), policy())
    assert host.hits == []


async def test_a_redirect_into_an_internal_address_is_refused(host: ImageHost) -> None:
    async with ImageHost() as internal:
        allowed = policy(host.host)  # the first host is allowed (as a self-hosted image server would be)...
        assert (await fetch(host.url("/a.png"), allowed)).body == TINY_PNG
        for target in (internal.url("/secret.png"), f"http://localhost:{internal.port}/secret.png"):
            with pytest.raises(FetchFailed):  # ...but not where it redirects to
                await fetch(host.url(f"/to?url={target}"), allowed)
        assert internal.hits == []


async def test_the_allow_list_names_a_host_and_port(host: ImageHost) -> None:
    assert (await fetch(host.url("/a.png"), policy(f"127.0.0.1:{host.port}"))).body == TINY_PNG
    assert (await fetch(host.url("/a.png"), policy("127.0.0.1"))).body == TINY_PNG  # any port
    with pytest.raises(FetchFailed):
        await fetch(host.url("/a.png"), policy(f"127.0.0.1:{host.port + 1}"))


async def test_a_trickling_server_is_cut_at_the_one_deadline(host: ImageHost) -> None:
    with pytest.raises(FetchFailed, match="deadline"):
        await fetch(host.url("/trickle"), policy(host.host, deadline=1.0))


async def test_people_see_one_sentence_for_a_refused_closed_silent_or_trickling_link(make_settings: Any) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers: until the bot gives up and closes

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent_port = silent.sockets[0].getsockname()[1]
    async with FakeOpenAI(image_links=True) as fake, ImageHost() as other:
        cases = {
            "refused": (fake.url("/files/image-1.png"), ""),
            "closed": (f"http://127.0.0.1:{closed_port}/a.png", "127.0.0.1"),
            "silent": (f"http://127.0.0.1:{silent_port}/a.png", "127.0.0.1"),
            "trickling": (other.url("/trickle"), "127.0.0.1"),
        }
        seen = {}
        for case, (link, allowed) in cases.items():
            fake.link_to = link
            settings = make_settings(openai_base_url=fake.base_url, image_url_allowed_hosts=allowed, openai_timeout=1)
            responder = RecordingResponder()
            async with open_engine(settings) as engine:
                await engine.handle(message("/image a lighthouse"), responder)
            seen[case] = responder.errors
        assert fake.requests_to("/files/image-1.png") == []  # loopback was never fetched without the allow-list
    silent.close()
    await silent.wait_closed()
    assert seen == {case: [NOT_FETCHED] for case in cases}
    assert [row[3] for row in await ledger(settings)] == ["settled"] * 4  # each drawn image is still billed


def test_a_malformed_allow_list_is_refused_at_start() -> None:
    with pytest.raises(Exception, match="IMAGE_URL_ALLOWED_HOSTS"):
        load_settings(env_file=None, openai_api_key="k", image_url_allowed_hosts="images.internal:99999")
