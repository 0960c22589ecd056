"""The composition root: the one place that picks concrete adapters, store and model from settings.

The only module of bot/ that imports adapters/ (a test holds every other to it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import TextIO

from adapters.console.adapter import TEAM_ID as CONSOLE_TEAM
from adapters.console.adapter import ConsoleIdentity
from adapters.console.platform import ConsolePlatform
from adapters.discord.platform import DiscordPlatform
from adapters.slack.platform import SlackPlatform
from bot.billing.budget import Budget, warn_if_unlimited
from bot.billing.metering import MeteredChat
from bot.billing.prices import NoPrice, PriceTable
from bot.billing.quota_admin import QuotaAdmin
from bot.catchup import CatchUps
from bot.chat.channels import Channels
from bot.chat.conversations import Conversations
from bot.chat.engine import Engine
from bot.clock import Clock, utc_now
from bot.commands.catalog import command_registry
from bot.commands.services import CommandServices
from bot.dashboard.roles import Roles
from bot.dashboard.signin import SignIn, dashboard_served, slack_http_mode
from bot.errors import ConfigError, PlatformUnreachable
from bot.mcp.approval import AskerApproval
from bot.mcp.audit import AuditedCalls
from bot.mcp.channels import ChannelToolServers
from bot.mcp.servers import McpServers
from bot.mcp.source import McpToolSource
from bot.media.image_limits import ImageLimits
from bot.media.images import ImageMaker
from bot.media.speech import Speaker
from bot.media.transcription import Transcriber
from bot.memory.embeddings import EmbeddingModel, OpenAIEmbeddings
from bot.memory.semantic import Memory
from bot.platform import Platforms
from bot.prompts.experiments import PromptExperiments
from bot.providers.errors import FaultLog
from bot.providers.image_links import link_policy
from bot.providers.llm import ChatModel
from bot.providers.openai_chat import OpenAIChat, make_client
from bot.providers.openai_media import (
    ImageModel,
    OpenAIImages,
    OpenAISpeech,
    OpenAITranscriber,
    SpeechModel,
    SpeechSynth,
)
from bot.providers.registry import Providers
from bot.providers.routed_chat import RoutedChat
from bot.providers.tokens import TokenCounter
from bot.settings import Settings
from bot.tools.loop import tool_loop
from bot.wording import count
from storage import open_store

log = logging.getLogger(__name__)

__all__ = ["CONSOLE_TEAM", "PLATFORMS", "ConsoleIdentity", "freeze_start_up", "open_engine", "run", "run_console"]

# Every platform the bot can serve: a new one is a folder in adapters/ and a line here.
PLATFORMS = Platforms([DiscordPlatform(), SlackPlatform()], fallback=ConsolePlatform())

MISSING_API_KEY = (
    "teambot needs an OpenAI API key to answer. Set OPENAI_API_KEY in a .env file in this folder "
    "(copy .env.example to .env) or in the environment; you can create a key at "
    "https://platform.openai.com/api-keys. To use a local or self-hosted model instead, set "
    "OPENAI_BASE_URL to any OpenAI-compatible server (for example http://localhost:11434/v1 for "
    "Ollama, or a vLLM or LiteLLM address); the key is then optional."
)


def require_model_access(settings: Settings) -> None:
    """Fail with one clear paragraph when no model can be reached: no key and no local server."""
    if settings.openai_api_key is None and settings.openai_base_url is None:
        raise ConfigError(MISSING_API_KEY)


@asynccontextmanager
async def open_engine(
    settings: Settings,
    *,
    model: ChatModel | None = None,
    images: ImageModel | None = None,
    speech: SpeechModel | None = None,
    voice: SpeechSynth | None = None,
    embeddings: EmbeddingModel | None = None,
    clock: Clock = utc_now,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    keep_connections: bool = True,
) -> AsyncIterator[Engine]:
    """An engine on the configured store, models, prices and MCP servers, closed on exit.

    The models default to OpenAI's through one client; benchmarks pass in-process ones. Tests pass
    a clock and its `sleep` (which paces the renewal of held reservations) to move time by hand. A one-off
    command passes `keep_connections=False` (PostgreSQL: its pool opens connections as needed, not all at start).
    """
    prices = PriceTable.load(settings.prices_file, settings.free_model_names)
    try:
        prices.chat(settings.chat_model)
    except NoPrice as exc:
        raise ConfigError(f"CHAT_MODEL: {exc.message}") from None
    for allowed in settings.allowed_models:
        try:
            prices.chat(allowed)
        except NoPrice as exc:
            raise ConfigError(f"ALLOWED_CHAT_MODELS: {exc.message} Or take {allowed} off the list.") from None
    if settings.memory_enabled:
        try:
            prices.embedding_cost(settings.embedding_model, 0)
        except NoPrice as exc:
            raise ConfigError(f"EMBEDDING_MODEL: {exc.message} Or set MEMORY_ENABLED=false.") from None
    providers = Providers.from_settings(settings)
    providers.refuse_elsewhere(
        {"IMAGE_MODEL": settings.image_model, "SPEECH_MODEL": settings.speech_model,
         "TRANSCRIBE_MODEL": settings.transcribe_model, "EMBEDDING_MODEL": settings.embedding_model}
    )  # fmt: skip
    if model is None:
        require_model_access(settings)
    # One client per provider; the default provider's also draws, speaks, transcribes and embeds.
    clients = {p.name: make_client(settings, p) for p in providers.all()}
    client = clients[providers.default.name]
    faults = FaultLog()  # one per process: a fault an admin must fix is logged once per period
    if model is None:
        chats = {p.name: OpenAIChat.from_settings(settings, clients[p.name], faults, p) for p in providers.all()}
        model = RoutedChat(providers, chats)
    store = await open_store(
        settings.database_url, busy_timeout_ms=settings.database_busy_timeout_ms, keep_connections=keep_connections
    )
    budget: Budget | None = None
    mcp_servers = McpServers.from_settings(settings)  # connects on first use; closing ends stdio servers
    try:
        budget = Budget(store.ledger, settings, clock, sleep=sleep)
        warn_if_unlimited(settings)
        await budget.recover()
        tokens = TokenCounter.for_model(providers.route(settings.chat_model).model, settings.token_encoding)
        tool_servers = ChannelToolServers(store.tool_servers, mcp_servers, clock)
        mcp_calls = AuditedCalls(mcp_servers, store.tool_servers, clock)
        # Each configured server's tools are listed once here; a channel is offered those of the servers on there.
        mcp_tools = [await McpToolSource.listed(mcp_calls, tool_servers)] if mcp_servers.configs else []
        chat = MeteredChat(
            model,
            prices=prices,
            budget=budget,
            tokens=tokens,
            max_output_tokens=settings.max_output_tokens,
            max_in_flight=settings.max_turns_in_flight,
        )
        memory = Memory(
            settings=settings,
            store=store,
            model=embeddings or OpenAIEmbeddings(client, faults),
            budget=budget,
            prices=prices,
            tokens=tokens,
            clock=clock,
        )
        image_limits = ImageLimits.from_settings(settings)  # one decode limit for every path that decodes images
        conversations = Conversations(
            settings=settings,
            store=store,
            chat=chat,
            tokens=tokens,
            memory=memory,
            clock=clock,
            prices=prices,
            image_limits=image_limits,
            tools=tool_loop(
                settings, chat, tokens, budget, mcp_tools, AskerApproval(mcp_calls, settings.tool_approval_seconds)
            ),
        )
        prompts = PromptExperiments(settings=settings, store=store, chat=chat, prices=prices, clock=clock)
        roles = Roles()
        services = CommandServices(
            settings=settings,
            commands=command_registry(settings.command_prefix),
            platforms=PLATFORMS,
            clock=clock,
            conversations=conversations,
            prompts=prompts,
            images=ImageMaker(
                settings,
                images or OpenAIImages(client, link_policy(settings), faults),
                budget,
                prices,
                image_limits,
            ),
            transcriber=Transcriber(settings, speech or OpenAITranscriber(client, faults), budget, prices),
            speaker=Speaker(settings, voice or OpenAISpeech(client, faults), budget, prices, tokens),
            memory=memory,
            budget=budget,
            quota=QuotaAdmin(budget, settings),
            channels=Channels(store, clock),
            signin=SignIn(store.signins, settings, clock, roles),
            personal_data=store,
            catchups=CatchUps(settings=settings, chat=chat, tokens=tokens, clock=clock),
            tool_servers=tool_servers,
            digests=store.digests,
            providers=providers,
        )
        yield Engine(services=services, store=store, roles=roles)
    finally:
        await mcp_servers.close()
        if budget is not None:
            await budget.close()
        await store.close()
        for each in clients.values():
            await each.close()


def freeze_start_up() -> None:
    """Take what start-up made (modules, classes, settings, the engine: it lives as long as the process) out of
    the cyclic garbage collector's full passes, after one collection (CPython's `gc.freeze`). Rescanning it at
    every full pass was about a third of the bot's CPU in a burst of 200 turns (benchmarks/README.md)."""
    gc.collect()
    gc.freeze()


async def run_console(
    settings: Settings,
    identity: ConsoleIdentity,
    *,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    files_dir: Path = Path("console-files"),
) -> int:
    """Chat on the terminal (or through a pipe) until EOF."""
    console = ConsolePlatform(identity, stdin=stdin, stdout=stdout, files_dir=files_dir)
    async with open_engine(settings) as engine:
        adapter = console.adapter(engine)
        freeze_start_up()
        with stop_on_signals() as stop:
            async with engine.background(stop), serving_dashboard(engine, settings):
                return await adapter.run(stop, settings.shutdown_grace_seconds, abort=stop.now)


async def run_digests(
    settings: Settings, out: TextIO, *, due: bool, channel: str | None = None, err: TextIO | None = None
) -> int:
    """`python -m bot digests run`: post the due digests (`due`, what the bot's scheduler does each minute,
    e.g. from cron) or every one now (of `channel`), on the console (printed on `out`) and each configured
    platform through its operator access (Slack's Web API, a brief Discord gateway connection), opened only
    where a run waits. A platform that cannot be reached is said on `err` (exit 1) and its runs left unclaimed;
    those of a platform whose token this process lacks are left to the running bot."""
    from bot.digests import CatchUpPoster, DigestRunner
    from bot.directory import ChannelAccess

    failed: dict[str, str] = {}
    async with open_engine(settings, keep_connections=False) as engine, AsyncExitStack() as opened:
        access: dict[str, ChannelAccess] = {}
        poster = CatchUpPoster(engine.services.catchups, access, settings)
        runner = DigestRunner(engine.store.digests, engine.now, settings.quota_timezone, poster)
        waiting = await runner.waiting(due=due, channel_id=channel)
        for platform in PLATFORMS.operated(settings):
            if not waiting[platform.name]:
                continue
            try:
                found = await opened.enter_async_context(platform.operator_access(engine, settings, out))
            except (ConfigError, PlatformUnreachable) as exc:
                log.warning("digests on %s not posted: %s", platform.name, exc)
                failed[platform.name] = str(exc)
                continue
            if found is not None:
                access[platform.name] = found
        runs = await (runner.run_due() if due else runner.run_now(channel))
    out.write(f"Posted {count(len(runs), 'digest')}.\n")
    for name in sorted(set(waiting) - set(access) - set(failed)):
        out.write(f"{count(waiting[name], 'digest')} on {name} left to the running bot (no {name} token here).\n")
    for name, why in failed.items():
        (err or sys.stderr).write(f"{count(waiting[name], 'digest')} on {name} not posted: {why}\n")
    return 1 if failed else 0


class Shutdown(asyncio.Event):
    """Set by the first SIGTERM/SIGINT: take no more work, let what runs finish within the grace period.

    `now` is set by the second: stop what runs at once (cancelled like any other cancel: the reply is
    abandoned and its reservation released).
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = asyncio.Event()


@asynccontextmanager
async def serving_dashboard(engine: Engine, settings: Settings) -> AsyncIterator[None]:
    """The web dashboard on PORT for the block, when PORT or PUBLIC_URL is set (console runs)."""
    if not dashboard_served(settings):
        yield
        return
    from adapters.web.site import serve_dashboard

    done = asyncio.Event()
    server = asyncio.create_task(serve_dashboard(engine, settings, done), name="dashboard")
    try:
        yield
    finally:
        done.set()
        await server


@contextmanager
def stop_on_signals() -> Iterator[Shutdown]:
    """An event set by SIGTERM or SIGINT: adapters stop taking work and let in-flight turns finish."""
    loop = asyncio.get_running_loop()
    stop = Shutdown()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, _stopping, stop, sig)
    try:
        yield stop
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _stopping(stop: Shutdown, sig: signal.Signals) -> None:
    if stop.is_set():
        log.warning("%s again: stopping in-flight work now", sig.name)
        stop.now.set()
        return
    log.info("%s: finishing in-flight work, taking no more (send it again to stop at once)", sig.name)
    stop.set()


def configured_platforms(settings: Settings) -> list[str]:
    """The platforms whose tokens are set; with none, `run` starts the console."""
    return [platform.name for platform in PLATFORMS.configured(settings)]


async def run(
    settings: Settings, console: ConsoleIdentity | None = None, *, files_dir: Path = Path("console-files")
) -> int:
    """Start every adapter whose tokens are set (one engine for all); with none, the console (as `console`)."""
    require_model_access(settings)
    platforms = [platform.serve for platform in PLATFORMS.configured(settings)]
    if not platforms:
        names = " or ".join(p.name for p in PLATFORMS.others())
        log.info("no %s tokens set: starting the console adapter", names)
        return await run_console(settings, console or ConsoleIdentity(), files_dir=files_dir)
    if dashboard_served(settings) and not slack_http_mode(settings):
        from adapters.web.site import serve_dashboard  # Slack's HTTP mode serves it beside /slack/events

        platforms.append(serve_dashboard)
    async with open_engine(settings) as engine:
        freeze_start_up()
        with stop_on_signals() as stop:
            disconnect = asyncio.Event()
            try:
                # One process, one engine, every configured platform; the first to fail stops the others.
                async with asyncio.TaskGroup() as group, engine.background(disconnect):
                    for serve in platforms:
                        group.create_task(serve(engine, settings, disconnect))
                    await stop.wait()
                    # New messages now get "restarting"; turns in flight have the grace period to finish
                    # while the platforms are still connected to deliver them; then disconnect.
                    await engine.drain(settings.shutdown_grace_seconds, abort=stop.now)
                    disconnect.set()
            except* ConfigError as failed:
                raise failed.exceptions[0] from None
    return 0


async def discord_invite(settings: Settings, out: TextIO) -> int:
    """Print the URL that adds the bot to a server, with the scopes and permissions it needs."""
    from adapters.discord.adapter import invite_url_for

    out.write(await invite_url_for(settings) + "\n")
    return 0


async def sync_discord(settings: Settings, out: TextIO) -> int:
    """Register the Discord slash commands now."""
    from adapters.discord.adapter import discord_sync

    async with open_engine(settings, keep_connections=False) as engine:
        names = await discord_sync(engine, settings)
    out.write(f"Synced {len(names)} commands: {', '.join('/' + n for n in names)}\n")
    return 0


def slack_manifest(settings: Settings, url: str | None) -> str:
    """The Slack app manifest for these commands (COMMAND_PREFIX); `url` for HTTP mode."""
    from adapters.slack.manifest import manifest_yaml

    return manifest_yaml(command_registry(settings.command_prefix), url=url)


async def team_names(settings: Settings) -> dict[tuple[str, str], str]:
    """{(platform, team id): name}, asked of the console and each platform whose token is set; a platform that
    cannot answer is logged and left out (its teams are listed without names)."""
    names: dict[tuple[str, str], str] = {}
    for platform in PLATFORMS.operated(settings):
        try:
            found = await platform.team_names(settings)
        except Exception as exc:  # a wrong token or no network: the list is still useful without names
            log.warning("could not look up %s team names: %s", platform.name, type(exc).__name__)
            continue
        names.update({(platform.name, team_id): name for team_id, name in found.items()})
    return names
