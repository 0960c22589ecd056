"""What every fake service shares: an aiohttp application served on 127.0.0.1 (a free port)."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LoopbackServer:
    """Serve `self.app` on 127.0.0.1 for the length of an `async with` block."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> None:
        """Listen (on a free port unless one is given)."""
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`: what an outbound allow-list (IMAGE_URL_ALLOWED_HOSTS) names to let the bot fetch
        from this server, which, being on loopback, is refused by default."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return f"http://127.0.0.1:{self.port}{path}"
