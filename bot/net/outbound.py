"""Fetching a URL that someone else chose (a provider's image link; later, web pages for the fetch tool).

- http and https only;
- public addresses only, unless the allow-list names the host (see bot/net/addresses.py);
- redirects followed by hand, each hop checked again;
- the connection goes to the very address that was checked: the name is resolved once, by our resolver,
  and aiohttp connects to what it returned, so a second DNS answer cannot swap in an internal address;
- a size cap while reading, and one deadline for the whole fetch (a server sending a byte every few
  seconds is cut at it, whatever the per-read timeouts);
- no credentials and no proxy from the environment go with the request.

Every failure is a FetchFailed whose text is for the log only: callers show people one generic sentence,
so a closed port, a silent one and a refused address look alike from outside.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from bot.net.addresses import AllowedHosts, ip_literal, is_public

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchFailed(Exception):
    """The fetch did not give a body; the message (for the log) says why. Never shown to people."""


class FetchTooLarge(FetchFailed):
    """The body is larger than the cap (declared or while reading)."""


@dataclass(frozen=True)
class FetchPolicy:
    """Where a fetch may go and how much it may take: the allow-list, the size cap, the total deadline."""

    allowed: AllowedHosts
    max_bytes: int
    deadline: float
    max_redirects: int = MAX_REDIRECTS


@dataclass(frozen=True)
class Fetched:
    """A fetched body with its final URL and media type (without parameters, lower case)."""

    url: str
    content_type: str
    body: bytes


class CheckedResolver(AbstractResolver):
    """Resolves a name and refuses it when any of its addresses is not public (unless the host is allowed);
    aiohttp connects only to the addresses returned here."""

    def __init__(self, allowed: AllowedHosts) -> None:
        self._allowed = allowed
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses, all of them public (or the host allowed)."""
        found = await self._resolver.resolve(host, port, family)
        if not self._allowed.allows(host, port):
            for result in found:
                address = ip_literal(result["host"].split("%")[0])
                if address is None or not is_public(address):
                    raise FetchFailed(f"{host} resolves to a non-public address ({result['host']})")
        return found

    async def close(self) -> None:
        """Nothing held."""
        await self._resolver.close()


async def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """GET `url` within `policy`; raises FetchFailed (FetchTooLarge past the cap)."""
    try:
        async with asyncio.timeout(policy.deadline):
            return await _follow(url, policy)
    except TimeoutError:
        raise FetchFailed(f"not done within the {policy.deadline:g} s deadline") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc}") from None


async def _follow(url: str, policy: FetchPolicy) -> Fetched:
    connector = aiohttp.TCPConnector(resolver=CheckedResolver(policy.allowed), use_dns_cache=False, force_close=True)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        for _hop in range(policy.max_redirects + 1):
            check_url(url, policy.allowed)
            async with session.get(url, allow_redirects=False, headers={"Accept": "*/*"}) as response:
                location = response.headers.get("Location")
                if response.status in REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchFailed(f"HTTP {response.status}")
                return Fetched(url, response.content_type.lower(), await _body(response, policy.max_bytes))
    raise FetchFailed(f"more than {policy.max_redirects} redirects")


def check_url(url: str, allowed: AllowedHosts) -> None:
    """Refuse a URL that is not http(s), or names a non-public address literally (names are checked when
    resolved, by CheckedResolver)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise FetchFailed(f"not an http(s) URL ({parts.scheme or 'no scheme'})")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise FetchFailed("a malformed port") from None
    address = ip_literal(parts.hostname)
    if address is not None and not is_public(address) and not allowed.allows(parts.hostname, port):
        raise FetchFailed(f"a non-public address ({address})")


async def _body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise FetchTooLarge(f"declared {declared:,} bytes, over the {max_bytes:,} cap")
    data = bytearray()
    async for piece in response.content.iter_chunked(64 * 1024):
        data += piece
        if len(data) > max_bytes:
            raise FetchTooLarge(f"over the {max_bytes:,} byte cap")
    return bytes(data)
