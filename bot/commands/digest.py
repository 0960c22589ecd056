"""/digest: an admin schedules this channel's catch-up, posted into it daily or weekly (bot/digests.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.catchup import refuse_excluded
from bot.commands.registry import CommandContext, CommandSpec, Subcommand, admins_only, exactly
from bot.digests import DAILY, PERIODS, WEEKLY, describe, describe_failures, latest_run, parse_schedule
from bot.errors import BadCommand
from storage.digests import DigestKey, DigestSchedule


def _admin_key(ctx: CommandContext) -> DigestKey:
    """The channel's key, when the asker is an admin (anyone may see a channel's digest; admins change it)."""
    if not ctx.message.author.is_admin:
        raise admins_only(ctx, "Only admins can change the channel's digest.")
    return _key(ctx)


def _key(ctx: CommandContext) -> DigestKey:
    message = ctx.message
    if message.is_direct:
        raise BadCommand("Digests are for channels: run /digest in the channel to summarize.")
    return DigestKey(message.platform, message.team_id, message.channel_id)


async def show_digest(ctx: CommandContext, _: tuple[str, ...]) -> None:
    schedule = await ctx.services.digests.get(_key(ctx))
    if schedule is None:
        await ctx.responder.send_text("This channel has no digest. An admin sets one with /digest daily 09:00.")
        return
    last = schedule.last_run.astimezone(_tz(ctx)).strftime("%Y-%m-%d %H:%M") if schedule.last_run else "not yet"
    await ctx.responder.send_text(
        f"This channel's digest is posted {describe(schedule)} ({ctx.services.settings.quota_timezone}),"
        f" set by {schedule.set_by}; last run: {last}{describe_failures(schedule, _tz(ctx))}."
    )


async def set_digest(ctx: CommandContext, words: tuple[str, ...]) -> None:
    when = parse_schedule((ctx.command.args[0], *words))
    key = _admin_key(ctx)
    # Every run would be refused: say so now rather than fail each time.
    refuse_excluded(ctx.services.settings, key.channel_id, ", so it can have no digest")
    now = ctx.services.clock()
    schedule = DigestSchedule(key, when.period, when.weekday, when.at, ctx.message.author.id, now)
    await ctx.services.digests.set(schedule)
    first = latest_run(schedule, now, _tz(ctx)) + PERIODS[when.period]
    await ctx.responder.send_text(
        f"This channel's catch-up will be posted here {describe(schedule)} ({ctx.services.settings.quota_timezone});"
        f" the first on {first:%Y-%m-%d %H:%M}. Its cost is charged to the team."
    )


async def digest_off(ctx: CommandContext, _: tuple[str, ...]) -> None:
    removed = await ctx.services.digests.remove(_admin_key(ctx))
    await ctx.responder.send_text("This channel's digest is off." if removed else "This channel has no digest.")


def _tz(ctx: CommandContext) -> ZoneInfo:
    return ZoneInfo(ctx.services.settings.quota_timezone)


DIGEST = CommandSpec.table(
    "digest",
    "this channel's catch-up, posted into it daily or weekly (admins set it)",
    {
        "": Subcommand(show_digest, takes=exactly(0), described="nothing (this channel's digest)"),
        DAILY: Subcommand(set_digest, "HH:MM", exactly(1)),
        WEEKLY: Subcommand(set_digest, "<mon..sun> HH:MM", exactly(2)),
        "off": Subcommand(digest_off, takes=exactly(0)),
    },
    default="",
)
