"""The Discord adapter on discord.py 2.x: mentions open threads, thread follow-ups, DMs, slash commands."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.common.approvals import ALLOW, DENY, PendingApprovals, outcome
from adapters.common.edited_reply import EditedReply
from adapters.common.text_split import split_message
from adapters.discord.commands import Run, app_command
from adapters.discord.directory import DiscordChannelAccess, DiscordDirectory
from bot.chat.engine import Engine
from bot.commands import parse_command_line
from bot.errors import BadAttachment, CannotReplyPrivately, ConfigError, PlatformUnreachable
from bot.messages import Attachment, Author, IncomingMessage
from bot.settings import Settings
from storage import PlatformMessage

log = logging.getLogger(__name__)
APPROVAL_ID = "tool-approval"  # the first part of an approval button's custom_id

MESSAGE_LIMIT = 2_000  # Discord's hard limit for a message's content
EDIT_INTERVAL = 1.0  # at most one edit per second per message
THREAD_NAME_LIMIT = 100
# The bot never pings anyone by itself: "@everyone", roles and users the model echoes stay plain text
# (discord.py pings them unless allowed_mentions says otherwise, on every send, edit and follow-up).
NO_PINGS = discord.AllowedMentions.none()
FIRST_RETRY, MAX_RETRY = 1.0, 60.0  # seconds between login tries while Discord is unreachable, doubling
TOKEN_REFUSED = "Discord refused DISCORD_TOKEN; copy the bot token again from the developer portal (Bot → Reset Token)."
INTENTS_HINT = (
    "Discord refused the Message Content intent. Enable it for this bot in the developer portal "
    "(Applications → your app → Bot → Privileged Gateway Intents → Message Content Intent), then restart."
)


def intents() -> discord.Intents:
    """Guilds, guild messages, DMs and message content (a privileged intent: enable it in the portal)."""
    wanted = discord.Intents.none()
    wanted.guilds = wanted.guild_messages = wanted.dm_messages = wanted.message_content = True
    wanted.members = False
    return wanted


def invite_permissions() -> discord.Permissions:
    """What the bot needs in a server (docs/discord.md): see channels, read their history, post and
    post in threads, open threads on the messages it answers, attach images and transcripts."""
    return discord.Permissions(
        view_channel=True, send_messages=True, send_messages_in_threads=True, create_public_threads=True,
        read_message_history=True, attach_files=True,
    )  # fmt: skip


def invite_url(application_id: int) -> str:
    """The URL that adds the bot to a server: the `bot` and `applications.commands` scopes, its permissions."""
    return discord.utils.oauth_url(
        application_id, permissions=invite_permissions(), scopes=("bot", "applications.commands")
    )


def quiet_voice_warnings() -> None:
    """discord.py warns on every start that PyNaCl and davey (voice) are missing: the bot never joins voice."""
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False


def addresses_everyone(message: discord.Message) -> bool:
    """An announcement to people (@everyone or @here, pinging or not), not a question for the bot."""
    return message.mention_everyone or "@everyone" in message.content or "@here" in message.content


def discord_reply(send: Callable[[str], Awaitable[Any]], *, interval: float = EDIT_INTERVAL) -> EditedReply:
    """A reply streamed into Discord messages: sent, then edited at most once a second (`send` pings no one)."""

    async def edit(message: Any, text: str) -> None:
        await message.edit(content=text, allowed_mentions=NO_PINGS)

    return EditedReply(send, edit, limit=MESSAGE_LIMIT, interval=interval, interrupted=" *[reply interrupted]*")


class ChannelResponder:
    """Answers a message in a channel, thread or DM; private answers go to the asker by DM.

    A channel (or a thread in it) has no replies only one person sees, so a private text or file is sent
    in the asker's DM, with a note in the channel that it was; where Discord refuses the DM (50007: the
    person does not accept DMs from server members) or it fails, CannotReplyPrivately: never the channel.
    """

    def __init__(
        self,
        channel: discord.abc.Messageable,
        asker: discord.User | discord.Member,
        *,
        interval: float = EDIT_INTERVAL,
        approvals: PendingApprovals | None = None,
    ) -> None:
        self._channel = channel
        self._asker = asker
        self._interval = interval
        self._told_dm = False
        self._approvals = approvals

    async def ask_approval(self, question: str, asker_id: str, seconds: float) -> bool | None:
        """Post the question with Allow / Deny buttons; only the asker's click answers it (DiscordAdapter's
        on_interaction). The message then says how it was answered, without its buttons."""
        if self._approvals is None:
            return False
        sent: list[discord.Message] = []

        async def post(key: str) -> None:
            view = discord.ui.View(timeout=None)
            for choice, label, style in ((ALLOW, "Allow", discord.ButtonStyle.success),
                                         (DENY, "Deny", discord.ButtonStyle.danger)):  # fmt: skip
                view.add_item(discord.ui.Button(label=label, style=style, custom_id=f"{APPROVAL_ID}:{choice}:{key}"))
            sent.append(await self._channel.send(question[:MESSAGE_LIMIT], view=view, allowed_mentions=NO_PINGS))

        answer = await self._approvals.wait(asker_id, seconds, post)
        if sent:
            said = outcome(answer, seconds)
            await sent[0].edit(content=f"{question} ({said})"[:MESSAGE_LIMIT], view=None, allowed_mentions=NO_PINGS)
        return answer

    async def send_text(self, text: str, *, private: bool = False) -> None:
        """Send, split under 2,000 characters; private ones by DM."""
        where = await self._private_channel() if private else self._channel
        for chunk in split_message(text, MESSAGE_LIMIT):
            await self._send(where, private, content=chunk)
        await self._tell_sent_by_dm(where)

    def stream(self) -> EditedReply:
        """Edit-based streaming."""

        async def send(text: str) -> Any:
            return await self._channel.send(text, allowed_mentions=NO_PINGS)

        return discord_reply(send, interval=self._interval)

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        """Upload a file; a private one by DM."""
        where = await self._private_channel() if private else self._channel
        file = discord.File(io.BytesIO(data), filename)
        await self._send(where, private, content=caption[:MESSAGE_LIMIT] or None, file=file)
        await self._tell_sent_by_dm(where)

    async def show_status(self, text: str, *, private: bool = False) -> None:
        """The typing indicator (it lasts about ten seconds or until the bot sends); it shows no content, and
        a private exchange here answers a mention everyone saw."""
        await self._channel.typing()

    async def send_error(self, message: str) -> None:
        """Say what went wrong."""
        await self.send_text(f":warning: {message}")

    async def _private_channel(self) -> discord.abc.Messageable:
        """Where only the asker reads: this channel when it is their DM with the bot, else a DM opened now."""
        if isinstance(self._channel, discord.DMChannel):
            return self._channel
        try:
            return await self._asker.create_dm()
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.info("could not open a DM for a private answer: %s", type(exc).__name__)
            raise CannotReplyPrivately("no DM channel") from exc

    async def _send(self, where: discord.abc.Messageable, private: bool, **message: Any) -> None:
        if not private:
            await where.send(allowed_mentions=NO_PINGS, **message)
            return
        try:
            await where.send(allowed_mentions=NO_PINGS, **message)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            # 50007 "Cannot send messages to this user": DMs from server members are off for this person.
            log.info("a private answer could not be sent by DM: %s", getattr(exc, "code", type(exc).__name__))
            raise CannotReplyPrivately("DM refused") from exc

    async def _tell_sent_by_dm(self, where: discord.abc.Messageable) -> None:
        """Once per message, say in the channel that the answer went by DM (so the thread is not left empty)."""
        if where is self._channel or self._told_dm:
            return
        self._told_dm = True
        await self._channel.send(SENT_BY_DM, allowed_mentions=NO_PINGS)


SENT_BY_DM = "I sent you the answer by direct message (only you can see it there)."


class InteractionResponder:
    """Answers a deferred slash command through its follow-up webhook; private answers are ephemeral.

    Discord shows the first follow-up to a deferred response with the defer's visibility, whatever its own
    flags (discord-api-docs #2866, #3466): before a private answer to a public defer, the "thinking…"
    message is resolved by an edit, so the private answer comes as a follow-up of its own, ephemeral.
    """

    def __init__(
        self, interaction: discord.Interaction, *, ephemeral_defer: bool, interval: float = EDIT_INTERVAL
    ) -> None:
        self._interaction = interaction
        self._interval = interval
        self._ephemeral_defer = ephemeral_defer
        self._loading = True  # the deferred "thinking…" still waits for its first follow-up

    async def send_text(self, text: str, *, private: bool = False) -> None:
        """Follow-up messages, ephemeral when private."""
        for chunk in split_message(text, MESSAGE_LIMIT):
            await self._before_follow_up(private)
            await self._interaction.followup.send(chunk, ephemeral=private, allowed_mentions=NO_PINGS)

    def stream(self) -> EditedReply:
        """Edit-based streaming on follow-up messages."""

        async def send(text: str) -> Any:
            await self._before_follow_up(private=False)
            return await self._interaction.followup.send(text, wait=True, allowed_mentions=NO_PINGS)

        return discord_reply(send, interval=self._interval)

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        """A follow-up with the file, ephemeral when private."""
        await self._before_follow_up(private)
        await self._interaction.followup.send(
            content=caption[:MESSAGE_LIMIT] or "",
            file=discord.File(io.BytesIO(data), filename),
            ephemeral=private,
            allowed_mentions=NO_PINGS,
        )

    async def show_status(self, text: str, *, private: bool = False) -> None:
        """The deferred "thinking…" already shows (ephemeral when the command is private)."""

    async def send_error(self, message: str) -> None:
        """Ephemeral."""
        await self.send_text(f":warning: {message}", private=True)

    async def _before_follow_up(self, private: bool) -> None:
        if self._loading and private and not self._ephemeral_defer:
            await self._interaction.edit_original_response(content=ANSWERED_PRIVATELY, allowed_mentions=NO_PINGS)
        self._loading = False


ANSWERED_PRIVATELY = "(answered privately)"


class DiscordAdapter:
    """Turns Discord messages and interactions into IncomingMessages for the engine."""

    def __init__(
        self, engine: Engine, settings: Settings, client: discord.Client, *, interval: float = EDIT_INTERVAL
    ) -> None:
        self.engine = engine
        self._settings = settings
        self.client = client
        self._interval = interval
        self.tree = app_commands.CommandTree(client)
        self.approvals = PendingApprovals()
        role = (settings.discord_admin_role or "").strip()
        if role and not role.isdigit():
            log.warning(
                "DISCORD_ADMIN_ROLE names a role: anyone who may create roles can make one with that name. "
                "Set the role's id instead (Server Settings → Roles → ⋯ → Copy Role ID)."
            )
        for spec in engine.commands:
            public = engine.commands.public_name(spec.name)
            self.tree.add_command(app_command(spec, engine.images.spec, self._runner(spec.name), name=public))
        engine.roles.serve("discord", self)
        engine.channel_access["discord"] = DiscordChannelAccess(client, MESSAGE_LIMIT)

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """The dashboard's check: the member's roles now, fetched from Discord (this bot does not ask for the
        members intent, so no cache follows role changes), by the rule the chat applies to their messages.
        A DM team has no admins; a guild the bot left, or a person who left it, has none either."""
        guild = self.client.get_guild(int(team_id)) if team_id.isdigit() else None
        if guild is None or not user_id.isdigit():
            return False
        try:
            member = await guild.fetch_member(int(user_id))
        except discord.NotFound:
            return False
        return self._author(member).is_admin

    # --- messages ----------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """Answer DMs, mentions (in a new thread) and follow-ups in threads the bot is part of."""
        me = self.client.user
        if me is None or message.author.bot or message.author.id == me.id or message.webhook_id:
            return
        channel = message.channel
        mentioned = me in message.mentions
        if addresses_everyone(message) and not mentioned:
            return  # not even in the bot's own threads: @everyone speaks to people (docs/discord.md)
        if isinstance(channel, discord.DMChannel):
            if not self._settings.discord_dms:
                await channel.send(DMS_OFF, allowed_mentions=NO_PINGS)
                return
            await self._answer(message, channel, thread_id="")
        elif isinstance(channel, discord.Thread):
            if mentioned or channel.owner_id == me.id:
                await self._answer(message, channel, thread_id=str(channel.id))
        elif mentioned and isinstance(channel, discord.TextChannel):
            name = _thread_name(self._text(message)) or "conversation"
            thread = await message.create_thread(name=name)
            await self._answer(message, thread, thread_id=str(thread.id))

    async def _answer(self, message: discord.Message, where: discord.abc.Messageable, *, thread_id: str) -> None:
        text = self._text(message)
        guild = message.guild
        incoming = IncomingMessage(
            platform="discord",
            team_id=team_of(guild.id if guild else None, message.author.id),
            channel_id=str(getattr(message.channel, "parent_id", None) or message.channel.id),
            thread_id=thread_id,
            message_id=str(message.id),
            author=self._author(message.author),
            text=text,
            is_direct=guild is None,
            command=parse_command_line(self._text(message, keep_channels=True)) if text.startswith("/") else None,
            attachments=tuple(self._attachment(a) for a in message.attachments),
            created_at=message.created_at,
            platform_directory=DiscordDirectory(
                message.author, message.channel.id, int(thread_id) if thread_id else None
            ),
        )
        responder = ChannelResponder(where, message.author, interval=self._interval, approvals=self.approvals)
        await self.engine.handle(incoming, responder)

    def _text(self, message: discord.Message, *, keep_channels: bool = False) -> str:
        """Content with the bot's mention removed and other mentions as names (channels kept as
        `<#id>` with `keep_channels`, for commands that take a channel)."""
        text = message.content
        me = self.client.user
        if me is not None:
            text = re.sub(rf"<@!?{me.id}>", "", text)
        for user in message.mentions:
            text = re.sub(rf"<@!?{user.id}>", f"@{user.display_name}", text)
        for channel in message.channel_mentions if not keep_channels else ():
            text = text.replace(f"<#{channel.id}>", f"#{channel.name}")
        for role in message.role_mentions:
            text = text.replace(f"<@&{role.id}>", f"@{role.name}")
        return text.strip()

    def _author(self, user: discord.User | discord.Member) -> Author:
        admin = False
        if isinstance(user, discord.Member):
            admin = user.guild_permissions.manage_guild or any(self._is_admin_role(r) for r in user.roles)
        return Author(id=str(user.id), display_name=user.display_name, is_admin=admin)

    def _is_admin_role(self, role: discord.Role) -> bool:
        """DISCORD_ADMIN_ROLE as a role id (preferred: anyone who may create roles can copy a name), or a name."""
        wanted = (self._settings.discord_admin_role or "").strip()
        if not wanted:
            return False
        if wanted.isdigit():
            return role.id == int(wanted)
        return role.name == wanted

    def _attachment(self, attachment: discord.Attachment) -> Attachment:
        cap = self._settings.max_attachment_mb * 1024 * 1024

        async def read() -> bytes:
            if attachment.size > cap:
                raise BadAttachment(f"{attachment.filename} is over the {self._settings.max_attachment_mb} MB limit.")
            return await attachment.read()

        return Attachment(
            attachment.filename, attachment.content_type or "application/octet-stream", attachment.size, read
        )

    # --- deletions and edits (raw events: they arrive whether or not the message is cached) ------

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A click on a tool approval's button: it answers the question only when the asker clicked."""
        data: Any = interaction.data or {}
        if interaction.type is not discord.InteractionType.component:
            return
        prefix, _, rest = str(data.get("custom_id", "")).partition(":")
        if prefix != APPROVAL_ID:
            return
        choice, _, key = rest.partition(":")
        if self.approvals.answer(key, str(interaction.user.id), choice):
            await interaction.response.defer()  # the question's message is edited with the answer
        else:
            await interaction.response.send_message("Only the person who asked can answer this.", ephemeral=True)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """A deleted message leaves history and memory (with the bot's replies to it)."""
        await self.engine.message_deleted(_platform_message(payload.guild_id, payload.message_id))

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        """Messages purged at once: each leaves history and memory."""
        for message_id in payload.message_ids:
            await self.engine.message_deleted(_platform_message(payload.guild_id, message_id))

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """An edited message: its stored text (and vector) follow the edit. It never starts an answer."""
        if "content" not in payload.data:
            return  # an embed unfurled, a pin: not a change of text
        author = payload.message.author
        if author.bot:
            return
        await self.engine.message_edited(
            _platform_message(payload.guild_id, payload.message_id), str(author.id), self._text(payload.message)
        )

    # --- slash commands ----------------------------------------------------------------------

    def _runner(self, name: str) -> Run:
        async def run(interaction: discord.Interaction, text: str, file: discord.Attachment | None) -> None:
            await self.on_command(interaction, name, text, file)

        return run

    async def on_command(
        self, interaction: discord.Interaction, name: str, text: str, file: discord.Attachment | None
    ) -> None:
        """Defer at once (Discord wants an answer within 3 s), then let the engine answer by follow-ups."""
        spec = self.engine.commands.get(name)
        if interaction.guild_id is None and not self._settings.discord_dms:
            await interaction.response.send_message(DMS_OFF, ephemeral=True, allowed_mentions=NO_PINGS)
            return
        command = parse_command_line(f"/{name} {text}")
        private = spec is not None and command is not None and spec.is_private(command)
        await interaction.response.defer(thinking=True, ephemeral=private)
        user = interaction.user
        channel_id = interaction.channel_id or 0
        parent = getattr(interaction.channel, "parent_id", None)
        incoming = IncomingMessage(
            platform="discord",
            team_id=team_of(interaction.guild_id, user.id),
            channel_id=str(parent or channel_id),
            thread_id=str(channel_id) if parent else "",
            message_id=str(interaction.id),
            author=self._author(user),
            text=f"/{name} {text}".strip(),
            is_direct=interaction.guild_id is None,
            command=command,
            attachments=(self._attachment(file),) if file is not None else (),
            platform_directory=DiscordDirectory(user, channel_id, channel_id if parent else None),
        )
        responder = InteractionResponder(interaction, ephemeral_defer=private, interval=self._interval)
        await self.engine.handle(incoming, responder)


def _platform_message(guild_id: int | None, message_id: int) -> PlatformMessage:
    # Discord message ids are unique across channels; a raw DM event does not say whose DM it was.
    return PlatformMessage("discord", str(guild_id) if guild_id else "", "", str(message_id))


DMS_OFF = "I don't take direct messages here. Mention me in a server channel instead."


def team_of(guild_id: int | None, user_id: int) -> str:
    """The team a message belongs to: its guild, or for a DM the person alone (`dm-<user id>`).

    A DM is personal: its prompts are that person's library, and its spend is held to the budget of that
    one-person team (the QUOTA_* defaults, or what the operator sets with `quota --team dm-<id>`).
    """
    return str(guild_id) if guild_id else f"dm-{user_id}"


def _thread_name(text: str) -> str:
    words = " ".join(text.split())
    return words[:THREAD_NAME_LIMIT].rsplit(" ", 1)[0] if len(words) > THREAD_NAME_LIMIT else words


def command_fingerprint(tree: app_commands.CommandTree[Any], guild_ids: list[int]) -> str:
    """What the synced commands depend on: the commands as Discord receives them, and where they go."""
    shape = sorted((c.to_dict(tree) for c in tree.get_commands()), key=lambda c: str(c["name"]))
    return hashlib.sha256(json.dumps([shape, sorted(guild_ids)], sort_keys=True).encode()).hexdigest()[:16]


async def sync_commands(adapter: DiscordAdapter, guild_ids: list[int], *, force: bool = False) -> bool:
    """Register the app commands (per guild: at once; global: Discord may take a while).

    Skipped when nothing changed since the last sync recorded in the database (claims last a day).
    """
    fingerprint = command_fingerprint(adapter.tree, guild_ids)
    first = await adapter.engine.first_delivery("discord-sync", fingerprint)
    if not (first or force):
        log.info("Discord commands unchanged (%s): not syncing", fingerprint)
        return False
    if guild_ids:
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)
            adapter.tree.copy_global_to(guild=guild)
            await adapter.tree.sync(guild=guild)
    else:
        await adapter.tree.sync()
    log.info("Discord commands synced (%s) to %s", fingerprint, guild_ids or "all guilds")
    return True


def guild_ids(settings: Settings) -> list[int]:
    """DISCORD_GUILD_IDS as integers."""
    return [int(g) for g in settings.discord_guild_ids.split(",") if g.strip()]


class _Client(discord.AutoShardedClient):
    """The gateway client wired to the adapter: events in, commands synced on start when they changed.

    Sharded: with no shard settings discord.py asks Discord how many shards the bot needs and runs
    them all; DISCORD_SHARD_COUNT with DISCORD_SHARD_IDS lets several processes split the gateway.
    """

    def __init__(self, settings: Settings) -> None:
        shard_ids = [int(i) for i in settings.discord_shard_ids.split(",") if i.strip()] or None
        if shard_ids is not None and settings.discord_shard_count is None:
            raise ConfigError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total across processes)")
        options: dict[str, Any] = {"shard_count": settings.discord_shard_count}
        if shard_ids is not None:
            options["shard_ids"] = shard_ids
        quiet_voice_warnings()
        super().__init__(intents=intents(), allowed_mentions=NO_PINGS, **options)
        self.adapter: DiscordAdapter | None = None
        self._guilds = guild_ids(settings)

    async def setup_hook(self) -> None:
        assert self.adapter is not None
        if self.application_id is not None:
            log.info("Discord: add the bot to a server with %s", invite_url(self.application_id))
        await sync_commands(self.adapter, self._guilds)

    async def on_message(self, message: discord.Message) -> None:
        assert self.adapter is not None
        await self.adapter.on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        assert self.adapter is not None
        await self.adapter.on_interaction(interaction)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        assert self.adapter is not None
        await self.adapter.on_raw_message_delete(payload)

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        assert self.adapter is not None
        await self.adapter.on_raw_bulk_message_delete(payload)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        assert self.adapter is not None
        await self.adapter.on_raw_message_edit(payload)


def gateway_client(settings: Settings) -> _Client:
    """The sharded gateway client for these settings."""
    return _Client(settings)


async def run_discord(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Log in (retried with backoff while Discord is unreachable), connect to the gateway, serve until
    `stop`; a refused token or intent is a ConfigError that names what to fix."""
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    client = gateway_client(settings)
    client.adapter = DiscordAdapter(engine, settings, client)
    try:
        if not await login_until_stopped(client, settings.discord_token.get_secret_value(), stop):
            return
        # connect() reconnects by itself once logged in (discord.py's own backoff).
        runner = asyncio.create_task(client.connect())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if runner.done():
                runner.result()
        finally:
            stopping.cancel()
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(INTENTS_HINT) from None
    finally:
        await client.close()


async def login_until_stopped(client: discord.Client, token: str, stop: asyncio.Event) -> bool:
    """client.login, tried again with backoff (one WARNING a try) while Discord cannot be reached;
    False when `stop` came first. A refused token raises ConfigError at once."""
    delay = FIRST_RETRY
    while not stop.is_set():
        try:
            await client.login(token)
            return True
        except discord.LoginFailure:
            raise ConfigError(TOKEN_REFUSED) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Discord unreachable (%s); retrying in %.0f s", type(exc).__name__, delay)
        except discord.DiscordServerError as exc:
            log.warning("Discord answered %s; retrying in %.0f s", exc.status, delay)
        # Each try opens an HTTP session on the client's connector and leaves it open: close both, so
        # the next try starts afresh (discord.py makes a new connector when it has none).
        await client.http.close()
        client.http.connector = discord.utils.MISSING
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            delay = min(delay * 2, MAX_RETRY)
    return False


async def log_in(client: discord.Client, settings: Settings) -> None:
    """One login for an operator's command (GET /users/@me, GET /oauth2/applications/@me): a refused token is a
    ConfigError saying what to do, Discord unreachable a PlatformUnreachable; neither carries the token."""
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    try:
        await client.login(settings.discord_token.get_secret_value())
    except discord.LoginFailure:
        raise ConfigError(TOKEN_REFUSED) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise PlatformUnreachable(f"Discord could not be reached to log in ({type(exc).__name__}).") from None
    except discord.HTTPException as exc:
        raise PlatformUnreachable(f"Discord refused the login with HTTP {exc.status}.") from None


async def invite_url_for(settings: Settings) -> str:
    """`python -m bot discord-invite`: log in over HTTP only to learn the application id."""
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    quiet_voice_warnings()
    client = discord.Client(intents=intents())
    try:
        await log_in(client, settings)
        assert client.application_id is not None  # login() reads it from /oauth2/applications/@me
        return invite_url(client.application_id)
    finally:
        await client.close()


async def discord_sync(engine: Engine, settings: Settings) -> list[str]:
    """`python -m bot discord-sync`: log in over HTTP only, register the commands now, log out."""
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    quiet_voice_warnings()
    client = discord.Client(intents=intents(), allowed_mentions=NO_PINGS)
    try:
        await log_in(client, settings)
        adapter = DiscordAdapter(engine, settings, client)
        await sync_commands(adapter, guild_ids(settings), force=True)
        return sorted(command.name for command in adapter.tree.get_commands())
    finally:
        await client.close()
