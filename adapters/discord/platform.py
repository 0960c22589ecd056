"""Discord as a platform; discord.py is imported only when Discord is used."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, TextIO

from bot.platform import DEFAULT_HELP_INTRO
from bot.settings import Settings

if TYPE_CHECKING:
    from adapters.discord.directory import DiscordChannelAccess
    from bot.chat.engine import Engine


class DiscordPlatform:
    """The bot in Discord servers and DMs (DISCORD_TOKEN)."""

    name = "discord"
    becoming_admin = "Admins have the Manage Server permission or the role named in DISCORD_ADMIN_ROLE."
    help_intro = DEFAULT_HELP_INTRO

    def configured(self, settings: Settings) -> bool:
        """When DISCORD_TOKEN is set."""
        return settings.discord_token is not None

    async def serve(self, engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
        """Log in, connect to the gateway and answer until `stop`."""
        from adapters.discord.adapter import run_discord

        await run_discord(engine, settings, stop)

    async def team_names(self, settings: Settings) -> dict[str, str]:
        """The servers the bot is in."""
        from adapters.discord.guilds import guild_names

        return await guild_names(settings)

    def operator_access(
        self, engine: Engine, settings: Settings, out: TextIO
    ) -> AbstractAsyncContextManager[DiscordChannelAccess | None]:
        """A brief gateway connection (the bot's member and permissions come only from the gateway)."""
        if settings.discord_token is None:
            return nullcontext(None)
        from adapters.discord.operator_access import gateway_access

        return gateway_access(settings)
