"""Slack's request signature, checked on the raw body before slack-bolt parses anything.

Bolt parses the body (JSON, form, payload) before its own verifier runs, so unsigned garbage (bad JSON,
bytes that are not UTF-8, a 5,000-digit timestamp) used to end in a 500 and a traceback per request.
Here an unsigned, stale or malformed request gets a 400 or 401 and a DEBUG line (a count at INFO once a
minute), nothing more.
Signature: "v0=" + HMAC-SHA256(secret, "v0:{timestamp}:{body}")
(api.slack.com/authentication/verifying-requests-from-slack).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from adapters.common.http_server import read_body

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300  # Slack's own guidance: refuse requests more than five minutes old (or ahead)
_TIMESTAMP_DIGITS = 12  # seconds since 1970 have 10 digits until the year 2286

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def signature_is_valid(secret: str, timestamp: str, body: bytes, signature: str, *, now: float) -> bool | None:
    """True when signed by `secret` within MAX_AGE_SECONDS of `now`; False when not; None when malformed."""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _TIMESTAMP_DIGITS):
        return None
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


class Refusals:
    """Refused requests come from anyone: each is a DEBUG line, and an INFO line says how many at most once
    every REPORT_SECONDS, so unsigned garbage cannot grow the log a line per request."""

    REPORT_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._unreported = 0
        self._next_report = float("-inf")

    def refused(self, why: str, size: int) -> None:
        """Count one refused request (`why`: what was wrong with it)."""
        log.debug("refused a Slack request with %s (%d bytes)", why, size)
        self._unreported += 1
        now = self._clock()
        if now >= self._next_report:
            log.info("refused %d unsigned, stale or malformed Slack request(s) (the latest: %s); reported at most "
                     "once a minute", self._unreported, why)  # fmt: skip
            self._unreported = 0
            self._next_report = now + self.REPORT_SECONDS


def signed_requests_only(
    secret: str, path: str, *, body_seconds: float, clock: Callable[[], float] = time.time
) -> Middleware:
    """An aiohttp middleware: requests to `path` pass only with a valid, fresh signature, their body read within
    `body_seconds`."""
    refusals = Refusals()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != path:
            return await handler(request)
        body = await read_body(request, body_seconds)  # aiohttp keeps it: bolt reads the same bytes next
        verdict = signature_is_valid(
            secret,
            request.headers.get("X-Slack-Request-Timestamp", ""),
            body,
            request.headers.get("X-Slack-Signature", ""),
            now=clock(),
        )
        if verdict is None:
            refusals.refused("a malformed timestamp", len(body))
            return web.json_response({"error": "invalid timestamp"}, status=400)
        if not verdict:
            refusals.refused("a bad or stale signature", len(body))
            return web.json_response({"error": "invalid signature"}, status=401)
        return await handler(request)

    return middleware
