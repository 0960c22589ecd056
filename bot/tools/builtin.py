"""The tools that come with the bot, as one tool source: each on or off by its settings."""

from __future__ import annotations

from collections.abc import Sequence

from bot.billing.budget import Budget
from bot.settings import Settings
from bot.tools.fetch_page import FetchPage
from bot.tools.registry import Tool
from bot.tools.web_search import WebSearch


class BuiltinTools:
    """web_search when WEB_SEARCH_URL is set; fetch_url unless FETCH_ENABLED=false."""

    def __init__(self, settings: Settings, budget: Budget) -> None:
        self._tools: list[Tool] = []
        if settings.web_search_url:
            self._tools.append(
                WebSearch(settings.web_search_url, settings.web_search_results, settings.fetch_timeout_seconds, budget)
            )
        if settings.fetch_enabled:
            self._tools.append(FetchPage.from_settings(settings))

    def tools(self) -> Sequence[Tool]:
        """The tools switched on."""
        return self._tools
