"""Serving an aiohttp application until a stop signal: Slack's HTTP mode and the dashboard share it."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)


async def read_body(request: web.Request, seconds: float) -> bytes:
    """The request's body (aiohttp keeps it for later reads), or a 408 that closes the connection when it has
    not all arrived within `seconds` (REQUEST_BODY_SECONDS): aiohttp puts no deadline on a body, so a client
    that sends half of one would hold its connection and handler open for as long as it likes."""
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        log.debug("cut off a request whose body did not arrive within %s s (%s)", seconds, request.path)
        refused = web.HTTPRequestTimeout(text=f"The request's body did not arrive within {seconds:g} seconds.\n")
        refused.force_close()
        raise refused from None


async def serve_until(app: web.Application, host: str, port: int, stop: asyncio.Event, *, serving: str) -> None:
    """Serve `app` on host:port until `stop` is set; `serving` names what it serves in the log line."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("%s on %s port %d", serving, host, port)
        await stop.wait()
    finally:
        await runner.cleanup()
