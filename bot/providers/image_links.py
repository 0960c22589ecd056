"""Images that a server returns as a link (LiteLLM's mocks, gateways, `response_format=url`), downloaded.

The same rules as a user's attachment: a size cap read as it streams, a web page is refused, and the
bytes must be an image we can name (PNG, JPEG, WebP, GIF). No credential goes with the request: the
link is the server's, not ours, and our API key is for the model server only.
"""

from __future__ import annotations

import base64
import binascii
import logging

import httpx2

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3


class ImageLinkFailed(Exception):
    """The link could not be turned into image bytes; the message says why (no URL in it: links can be signed)."""


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


async def fetch_image(url: str, max_bytes: int, wait: float | httpx2.Timeout | None) -> tuple[bytes, str]:
    """The image at `url` (http(s) or a data: URL) and its MIME type; raises ImageLinkFailed."""
    if url.startswith("data:"):
        data = _data_url(url, max_bytes)
    elif url.startswith(("http://", "https://")):
        data = await _download(url, max_bytes, wait)
    else:
        raise ImageLinkFailed("the image link is not an http(s) or data: URL")
    mime = image_type(data)
    if mime is None:
        raise ImageLinkFailed("the image link did not lead to an image")
    return data, mime


async def _download(url: str, max_bytes: int, wait: float | httpx2.Timeout | None) -> bytes:
    try:
        async with (
            httpx2.AsyncClient(timeout=wait, follow_redirects=True, max_redirects=MAX_REDIRECTS) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ImageLinkFailed(f"downloading the image failed (HTTP {response.status_code})")
            if response.headers.get("content-type", "").split(";")[0].strip().lower() == "text/html":
                raise ImageLinkFailed("the image link led to a web page, not an image")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ImageLinkFailed(f"the image is over the {max_bytes // 2**20} MB limit")
            data = bytearray()
            async for piece in response.aiter_bytes():
                data += piece
                if len(data) > max_bytes:
                    raise ImageLinkFailed(f"the image is over the {max_bytes // 2**20} MB limit")
    except httpx2.HTTPError as exc:
        log.warning("downloading an image link failed: %s", type(exc).__name__)
        raise ImageLinkFailed(f"downloading the image failed ({type(exc).__name__})") from None
    return bytes(data)


def _data_url(url: str, max_bytes: int) -> bytes:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise ImageLinkFailed("the image link is a data: URL that is not base64")
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageLinkFailed(f"the image is over the {max_bytes // 2**20} MB limit")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageLinkFailed("the image link is a data: URL that does not decode") from None
