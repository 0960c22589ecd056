"""Downloading a Slack file with the bot token: the token goes only to Slack's file hosts.

A file object's `url_private` comes from an event body that names whatever URL it likes (a message's
files, a shortcut's message, files.list). The token is sent only to Slack's own file hosts and to the
Web API's host the client already trusts (SLACK_API_URL, a gateway or the tests' loopback server).
Redirects are followed by hand: with the token while they stay within those hosts, without it elsewhere.
The size cap is enforced while the bytes stream in, so a large file is never held in memory whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import aiohttp
from yarl import URL

from bot.errors import BadAttachment

log = logging.getLogger(__name__)

# Where Slack serves url_private / url_private_download (commercial and GovSlack).
SLACK_FILE_HOSTS = ("files.slack.com", "files.slack-gov.com")
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower().rstrip("."), url.port)


class SlackFiles:
    """Downloads url_private with the bot token, only to trusted origins, with a streaming size cap."""

    def __init__(self, token: str, api_url: str, *, file_hosts: Iterable[str] = SLACK_FILE_HOSTS) -> None:
        self._token = token
        self._trusted = {_origin(URL(f"https://{host}/")) for host in file_hosts}
        self._trusted.add(_origin(URL(api_url)))

    def trusted(self, url: str) -> bool:
        """Whether the bot token may be sent to this URL (scheme, host and port all match a trusted origin)."""
        parsed = URL(url)
        return parsed.is_absolute() and not parsed.user and _origin(parsed) in self._trusted

    async def download(self, url: str, max_bytes: int) -> bytes:
        """A file's bytes; BadAttachment for an untrusted first URL, a refusal, a web page or a file over the cap."""
        if not self.trusted(url):
            log.warning("refused to send the Slack token to %s", URL(url).host)
            raise BadAttachment("That file is not on Slack's file server, so the bot will not download it.")
        async with aiohttp.ClientSession() as session:
            for _ in range(MAX_REDIRECTS + 1):
                headers = {"Authorization": f"Bearer {self._token}"} if self.trusted(url) else {}
                async with session.get(url, headers=headers, allow_redirects=False) as response:
                    if response.status in _REDIRECTS and "Location" in response.headers:
                        url = str(response.url.join(URL(response.headers["Location"])))
                        continue
                    return await _body(response, max_bytes)
        raise BadAttachment("Slack redirected the file download too many times.")


async def _body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.status != 200:
        raise BadAttachment(f"Slack refused the file download (HTTP {response.status}).")
    if response.content_type == "text/html":
        raise BadAttachment(
            "Slack sent a web page instead of the file: the bot lacks the files:read scope. "
            "Ask an admin to add it and reinstall the app."
        )
    too_big = BadAttachment(f"The file is over the {max_bytes // 2**20} MB limit.")
    if response.content_length is not None and response.content_length > max_bytes:
        raise too_big
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise too_big
    return bytes(data)
