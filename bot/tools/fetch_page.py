"""`fetch_url`: read one web page or PDF, as text, under the outbound rules (bot/net/outbound.py).

http(s) only, public addresses only unless FETCH_ALLOWED_HOSTS names the host, every redirect checked
again, FETCH_MAX_MB read at most, FETCH_TIMEOUT_SECONDS for the whole fetch. HTML goes through
trafilatura, which keeps a page's main text and drops menus, scripts and boilerplate.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from bot.net.addresses import AllowedHosts
from bot.net.outbound import FetchFailed, FetchPolicy, FetchTooLarge, fetch
from bot.settings import Settings
from bot.tools.documents import UnreadableDocument, pdf_text
from bot.tools.registry import ToolFailed, ToolResult, ToolUse

log = logging.getLogger(__name__)

TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json")


class FetchPage:
    """Reads a page the model names."""

    name = "fetch_url"
    description = "Read a web page or PDF at an http(s) URL and return its main text."
    acts = False

    def __init__(self, policy: FetchPolicy) -> None:
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {"url": {"type": "string", "description": "the page's full http(s) URL"}},
            "required": ["url"],
        }
        self._policy = policy

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPage:
        """FETCH_ALLOWED_HOSTS, FETCH_MAX_MB and FETCH_TIMEOUT_SECONDS."""
        allowed = AllowedHosts.parse(settings.fetch_allowed_hosts)
        return cls(FetchPolicy(allowed, settings.fetch_max_mb * 2**20, settings.fetch_timeout_seconds))

    def status(self, arguments: dict[str, Any]) -> str:
        """The status line names the site."""
        host = urlsplit(str(arguments.get("url") or "")).hostname
        return f"reading {host}…" if host else "reading a page…"

    async def run(self, arguments: dict[str, Any], use: ToolUse) -> ToolResult:
        """The page's text; ToolFailed (one sentence whatever the cause, see outbound.py) when it cannot be read."""
        url = str(arguments.get("url") or "").strip()
        try:
            fetched = await fetch(url, self._policy)
        except FetchTooLarge as exc:
            log.info("fetch_url refused a large page: %s", exc)
            raise ToolFailed(f"the page is larger than this bot reads ({self._policy.max_bytes // 2**20} MB)") from None
        except FetchFailed as exc:
            log.info("fetch_url could not fetch a page: %s", exc)
            raise ToolFailed("could not fetch that page (not reachable, not allowed, or too slow)") from None
        text = await asyncio.to_thread(page_text, fetched.body, fetched.content_type)
        if not text.strip():
            raise ToolFailed("the page has no readable text")
        return ToolResult(f"the page {fetched.url}", text, (f"{fetched.url}",))


def page_text(body: bytes, content_type: str) -> str:
    """The readable text of a fetched body: HTML's main text, a PDF's text layer, or plain text."""
    if content_type == "application/pdf" or body.startswith(b"%PDF-"):
        try:
            return pdf_text(body)
        except UnreadableDocument as exc:
            raise ToolFailed(str(exc)) from None
    if content_type in ("text/html", "application/xhtml+xml") or not content_type:
        import trafilatura  # imported at the first page read: it and lxml weigh tens of MB a bot may never use

        extracted = trafilatura.extract(body.decode("utf-8", "replace"), include_links=True, include_tables=True)
        return extracted or ""
    if content_type.startswith("text/") or content_type in TEXT_TYPES:
        return body.decode("utf-8", "replace")
    raise ToolFailed(f"{content_type} is not a page or document this bot reads")
