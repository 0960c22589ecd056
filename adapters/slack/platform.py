"""Slack as a platform; slack-bolt is imported only when Slack is used."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, TextIO

from bot.platform import DEFAULT_HELP_INTRO
from bot.settings import Settings

if TYPE_CHECKING:
    from adapters.slack.directory import SlackChannelAccess
    from bot.chat.engine import Engine


class SlackPlatform:
    """The bot in a Slack workspace (SLACK_BOT_TOKEN; Socket Mode or HTTP mode)."""

    name = "slack"
    becoming_admin = "Admins are the workspace's admins and owners and the users listed in SLACK_ADMIN_USERS."
    help_intro = DEFAULT_HELP_INTRO

    def configured(self, settings: Settings) -> bool:
        """When SLACK_BOT_TOKEN is set."""
        return settings.slack_bot_token is not None

    async def serve(self, engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
        """Serve Slack events and commands until `stop`."""
        from adapters.slack.adapter import run_slack

        await run_slack(engine, settings, stop)

    async def team_names(self, settings: Settings) -> dict[str, str]:
        """The workspace the bot token belongs to."""
        from adapters.slack.workspace import workspace_names

        return await workspace_names(settings)

    def operator_access(
        self, engine: Engine, settings: Settings, out: TextIO
    ) -> AbstractAsyncContextManager[SlackChannelAccess | None]:
        """The Web API with SLACK_BOT_TOKEN alone (no Socket Mode or HTTP events needed)."""
        if settings.slack_bot_token is None:
            return nullcontext(None)
        from adapters.slack.directory import SlackChannelAccess

        token = settings.slack_bot_token.get_secret_value()
        return nullcontext(SlackChannelAccess.from_settings(token, settings.slack_api_url))
