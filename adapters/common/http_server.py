"""Serving an aiohttp application until a stop signal: Slack's HTTP mode and the dashboard share it."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)


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
