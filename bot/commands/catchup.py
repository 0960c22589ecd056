"""/catchup: a summary of this thread, or of this channel since a time, from the platform's own history."""

from __future__ import annotations

from bot.catchup import SINCE_FORMATS
from bot.commands.registry import CommandContext, CommandSpec

CATCHUP_USAGE = "/catchup [since] [public]"
PUBLIC = "public"


async def catchup(ctx: CommandContext) -> None:
    """Summarize the thread (all of it) or the channel since `since` (24 h by default), for the asker alone
    unless they say `public` (the registry decides where the answer goes)."""
    words = [w for w in ctx.command.args if w.lower() != PUBLIC]
    if len(words) > 1:
        raise CATCHUP.bad_usage(f"Say one time to catch up from ({SINCE_FORMATS}), not {' '.join(words)!r}.")
    catchups = ctx.services.catchups
    since = catchups.since(words[0] if words else None)
    await ctx.responder.send_text(await catchups.summary(ctx.message, since, ctx.responder))


CATCHUP = CommandSpec(
    "catchup",
    CATCHUP_USAGE,
    "summarize this thread, or this channel since a time (30m, 2h, 3d, 1w, yesterday, a date); only you see it"
    " unless you add public",
    catchup,
    private=True,
    public_word=PUBLIC,
)
