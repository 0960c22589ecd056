"""The names of the Discord servers (guilds) the bot is in, for operators' `python -m bot teams`."""

from __future__ import annotations

import discord

from bot.settings import Settings


async def guild_names(settings: Settings) -> dict[str, str]:
    """{guild id: name} over HTTP only (GET /users/@me/guilds, paged by discord.py); no gateway connection."""
    if settings.discord_token is None:
        return {}
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(settings.discord_token.get_secret_value())
        return {str(guild.id): guild.name async for guild in client.fetch_guilds(limit=None)}
    finally:
        await client.close()
