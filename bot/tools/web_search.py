"""`web_search`: a SearXNG instance's JSON API (WEB_SEARCH_URL), its top results as quoted material.

The instance is the admin's own, often on a private address: its host is allowed for this fetch alone
(the outbound rules otherwise apply: one deadline, a size cap, no redirect to elsewhere unchecked).

Each search goes through the one metered path (`Budget.metered`): one search unit reserved before it is
sent (refused when QUOTA_USER_DAILY_SEARCHES is reached, and the model is told so), settled once it
answered. SearXNG costs nothing per call, so the cost is $0; the unit is what the limit counts.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from bot.billing.budget import Budget, QuotaExceeded, charge_for
from bot.net.addresses import AllowedHosts
from bot.net.outbound import DEFAULT_PORTS, FetchFailed, FetchPolicy, fetch
from bot.tools.registry import ToolFailed, ToolResult, ToolUse
from storage.ledger_records import Units

log = logging.getLogger(__name__)

SEARCH_MAX_BYTES = 2 * 2**20  # a results page is a few tens of kB
ENGINE = "searxng"  # the ledger's model column for a search
ONE_SEARCH = Units(searches=1)


class WebSearch:
    """Searches the web through SearXNG."""

    name = "web_search"
    description = (
        "Search the web for current information. Returns the top results (title, link, snippet); "
        "read a result in full with fetch_url when the snippet is not enough."
    )
    acts = False

    def __init__(self, base_url: str, results: int, deadline: float, budget: Budget) -> None:
        self._budget = budget
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "what to search for, as words"}},
            "required": ["query"],
        }
        self._base = base_url.rstrip("/")
        self._results = results
        parts = urlsplit(self._base)
        host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
        self._policy = FetchPolicy(AllowedHosts.parse(f"{host}:{port}"), SEARCH_MAX_BYTES, deadline, max_redirects=0)

    def status(self, arguments: dict[str, Any]) -> str:
        """The status line."""
        return "searching the web…"

    async def run(self, arguments: dict[str, Any], use: ToolUse) -> ToolResult:
        """The top results for the query."""
        query = str(arguments.get("query") or "").strip()
        if not query:
            raise ToolFailed("the query was empty")
        url = f"{self._base}/search?{urlencode({'q': query, 'format': 'json'})}"
        try:
            async with self._budget.metered(charge_for(use.message, "search", ENGINE), ONE_SEARCH, 0) as reservation:
                fetched = await fetch(url, self._policy)
                await reservation.settle(ONE_SEARCH, 0)  # the instance answered: the search counts
            results = json.loads(fetched.body)["results"]
        except QuotaExceeded as exc:
            raise ToolFailed(f"the search was refused, none was sent: {exc.message}") from None
        except FetchFailed as exc:
            log.warning("web search failed: %s", exc)
            raise ToolFailed("the search service did not answer; try again later") from None
        except (ValueError, KeyError, TypeError):
            log.warning("web search answered something that is not SearXNG's JSON (is format=json enabled?)")
            raise ToolFailed("the search service gave an answer I could not read") from None
        lines: list[str] = []
        found: list[str] = []
        for result in [r for r in results if isinstance(r, dict) and r.get("url")][: self._results]:
            title = str(result.get("title") or result["url"]).strip()
            link = str(result["url"])
            lines.append(f"{len(lines) + 1}. [{title}]({link})\n{str(result.get('content') or '').strip()}")
            found.append(f"{title}: {link}")
        if not lines:
            return ToolResult(f"web search for {query!r}", "no results")
        return ToolResult(f"web search for {query!r}", "\n\n".join(lines), tuple(found))
