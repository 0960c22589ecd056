"""Images that a server returns as a link (LiteLLM's mocks, gateways, `response_format=url`), downloaded.

The download follows the outbound rules (bot/net/outbound.py): http(s), public addresses only unless
IMAGE_URL_ALLOWED_HOSTS names the host, each redirect checked, one deadline (OPENAI_TIMEOUT), a size cap
while reading. A web page is refused, and the bytes must be an image we can name (PNG, JPEG, WebP, GIF).
No credential goes with the request: the link is the server's, not ours, and our API key is for the model
server only. Why a download failed goes to the log; people get one sentence whatever the cause, so the
bot cannot be used to learn which internal ports are open.
"""

from __future__ import annotations

import base64
import binascii
import logging

from bot.net.addresses import AllowedHosts
from bot.net.outbound import FetchFailed, FetchPolicy, FetchTooLarge, fetch
from bot.settings import Settings

log = logging.getLogger(__name__)

NOT_DOWNLOADED = "the image link could not be downloaded"


class ImageLinkFailed(Exception):
    """The link could not be turned into image bytes; the message says why (no URL in it: links can be signed)."""


def link_policy(settings: Settings) -> FetchPolicy:
    """IMAGE_URL_ALLOWED_HOSTS, MAX_ATTACHMENT_MB, and OPENAI_TIMEOUT as the whole download's deadline."""
    return FetchPolicy(
        AllowedHosts.parse(settings.image_url_allowed_hosts), settings.max_attachment_mb * 2**20,
        settings.openai_timeout,
    )  # fmt: skip


def image_type(data: bytes) -> str | None:
    """The MIME type of image bytes, from their signature, or None if they are not an image we send."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


async def fetch_image(url: str, policy: FetchPolicy) -> tuple[bytes, str]:
    """The image at `url` (http(s) or a data: URL) and its MIME type; raises ImageLinkFailed."""
    if url.startswith("data:"):
        data = _data_url(url, policy.max_bytes)
    else:
        data = await _download(url, policy)
    mime = image_type(data)
    if mime is None:
        raise ImageLinkFailed("the image link did not lead to an image")
    return data, mime


async def _download(url: str, policy: FetchPolicy) -> bytes:
    try:
        fetched = await fetch(url, policy)
    except FetchTooLarge:
        raise ImageLinkFailed(_too_large(policy.max_bytes)) from None
    except FetchFailed as exc:
        log.warning("downloading an image link failed: %s", exc)
        raise ImageLinkFailed(NOT_DOWNLOADED) from None
    if fetched.content_type == "text/html":
        raise ImageLinkFailed("the image link led to a web page, not an image")
    return fetched.body


def _too_large(max_bytes: int) -> str:
    return f"the image is over the {max_bytes // 2**20} MB limit"


def _data_url(url: str, max_bytes: int) -> bytes:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise ImageLinkFailed("the image link is a data: URL that is not base64")
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageLinkFailed(_too_large(max_bytes))
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageLinkFailed("the image link is a data: URL that does not decode") from None
