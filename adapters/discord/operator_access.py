"""A short-lived gateway connection for operators' commands (`python -m bot digests run`).

Reading a channel as the bot needs what only the gateway sends: the guilds' channels, roles, the bot's own
member and so its permissions (discord.py's guild cache, filled by READY and each guild's GUILD_CREATE).
So the command logs in, connects with the running bot's intents, waits until every guild has arrived, hands
out the same DiscordChannelAccess the running bot posts digests through, and disconnects.

Each connection is an IDENTIFY, and Discord allows a bot 1,000 a day (more resets its token): the caller
connects only when a Discord digest is to be posted, not on every cron pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import discord

from adapters.discord.adapter import INTENTS_HINT, MESSAGE_LIMIT, NO_PINGS, intents, log_in, quiet_voice_warnings
from adapters.discord.directory import DiscordChannelAccess
from bot.errors import ConfigError, PlatformUnreachable
from bot.settings import Settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def gateway_access(settings: Settings) -> AsyncIterator[DiscordChannelAccess]:
    """The bot's view of its Discord servers for the block: logged in with DISCORD_TOKEN, connected to the
    gateway (every shard Discord asks for, so every guild) and ready within DISCORD_CONNECT_TIMEOUT seconds;
    closed on exit. A refused token or intent is a ConfigError, anything else that stops it being ready a
    PlatformUnreachable; both name Discord and what failed, never the token."""
    quiet_voice_warnings()
    # Sharded with no count: Discord says how many shards (GET /gateway/bot), and all of them are connected.
    client = discord.AutoShardedClient(intents=intents(), allowed_mentions=NO_PINGS)
    connection: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(settings.discord_connect_timeout):
            await log_in(client, settings)
            connection = asyncio.create_task(client.connect(reconnect=False), name="discord-operator-gateway")
            await _ready(client, connection)
    except TimeoutError:
        await _close(client, connection)
        raise PlatformUnreachable(
            f"Discord was not ready within {settings.discord_connect_timeout:g} seconds (the login, then the "
            "gateway's READY and each server's GUILD_CREATE); try again later, or raise DISCORD_CONNECT_TIMEOUT."
        ) from None
    except discord.PrivilegedIntentsRequired:
        await _close(client, connection)
        raise ConfigError(INTENTS_HINT) from None
    except discord.ConnectionClosed as exc:
        await _close(client, connection)
        raise PlatformUnreachable(f"Discord closed the gateway connection (code {exc.code}).") from None
    except (discord.GatewayNotFound, aiohttp.ClientError, OSError) as exc:
        await _close(client, connection)
        raise PlatformUnreachable(f"Discord's gateway could not be reached ({type(exc).__name__}).") from None
    except BaseException:
        await _close(client, connection)
        raise
    try:
        yield DiscordChannelAccess(client, MESSAGE_LIMIT)
    finally:
        await _close(client, connection)


async def _ready(client: discord.Client, connection: asyncio.Task[None]) -> None:
    """Wait for discord.py's ready (READY, then each guild's GUILD_CREATE); the connection ending first raises
    what ended it."""
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        await asyncio.wait({ready, connection}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if not ready.done() or ready.cancelled():
        connection.result()  # raises what closed it
        raise PlatformUnreachable("Discord closed the gateway connection before it was ready.")
    log.info("Discord: connected for an operator's command (%d servers)", len(client.guilds))


async def _close(client: discord.Client, connection: asyncio.Task[None] | None) -> None:
    """Close the websockets and the HTTP session; the connection's task ends with them."""
    await client.close()
    if connection is not None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(connection, 5)
