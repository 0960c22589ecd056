"""The web as the tools see it, on loopback: a SearXNG instance's JSON API, and a server of pages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


class FakeSearXNG(LoopbackServer):
    """`GET /search?q=…&format=json` as SearXNG answers it: {"query", "results": [{title, url, content, …}]}.

    `results` is what every search returns; `queries` records what was asked. Without format=json it answers
    403, as an instance whose JSON output is not enabled does.
    """

    def __init__(self, results: list[dict[str, Any]] | None = None) -> None:
        self.results = results if results is not None else []
        self.queries: list[str] = []
        super().__init__(web.Application())
        self.app.router.add_get("/search", self._search)

    @property
    def base_url(self) -> str:
        """What WEB_SEARCH_URL should be."""
        return f"http://127.0.0.1:{self.port}"

    async def _search(self, request: web.Request) -> web.Response:
        if request.query.get("format") != "json":
            raise web.HTTPForbidden()
        query = request.query.get("q", "")
        self.queries.append(query)
        results = [{**r, "engine": "fake", "score": 1.0} for r in self.results]
        return web.json_response({"query": query, "number_of_results": len(results), "results": results})


class PageServer(LoopbackServer):
    """Serves `pages` (path -> (body, content type)); `/to?url=…` redirects anywhere; `hits` records paths."""

    def __init__(self, pages: dict[str, tuple[bytes, str]] | None = None) -> None:
        self.pages = pages if pages is not None else {}
        self.hits: list[str] = []
        super().__init__(web.Application())
        self.app.router.add_get("/{path:.*}", self._serve)

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if request.path == "/to":
            raise web.HTTPFound(request.query["url"])
        if request.path not in self.pages:
            raise web.HTTPNotFound()
        body, content_type = self.pages[request.path]
        return web.Response(body=body, content_type=content_type)
