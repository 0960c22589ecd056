"""/usage and /quota: spend and limits."""

from __future__ import annotations

import asyncio

from bot.billing.quota_admin import QUOTA_USAGE
from bot.billing.usage_report import personal_usage, team_month_png, team_usage
from bot.commands.registry import CommandContext, CommandSpec, Subcommand, admins_only, exactly


async def own_usage(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Your own usage and what is left."""
    text = await personal_usage(ctx.services.budget, ctx.message.team_id, ctx.message.author.id)
    await ctx.responder.send_text(text)


async def team_usage_month(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The team's month with a chart (admins)."""
    message = ctx.message
    if not message.author.is_admin:
        raise admins_only(ctx, "/usage team is for admins only; /usage shows your own.")
    text, month = await team_usage(ctx.services.budget, message.team_id)
    chart = await asyncio.to_thread(team_month_png, month)
    await ctx.responder.send_text(text)
    await ctx.responder.send_file(
        chart, f"team-spend-{month.month}.png", "image/png", caption=f"Team spend per day in {month.month}"
    )


async def show_quota(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The defaults, the team's own limits and the latest changes."""
    await ctx.responder.send_text(await ctx.services.quota.show(ctx.message.team_id))


async def change_quota(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """`set …` or `reset …`: the words are read by the quota admin, shared with the command line."""
    services, message = ctx.services, ctx.message
    words = [ctx.command.args[0].lower(), *rest]
    text = await services.quota.apply(message.team_id, words, message.author.id, services.clock())
    await ctx.responder.send_text(text)


USAGE = CommandSpec.table(
    "usage",
    "your spend and what is left today and this month",
    {
        "": Subcommand(own_usage, described="nothing (your own)"),
        "team": Subcommand(team_usage_month, described="team (admins)"),
    },
    default="",
    usage="/usage [team]",
    private=True,
)
QUOTA = CommandSpec.table(
    "quota",
    "show or set budgets (admins)",
    {
        "show": Subcommand(show_quota, takes=exactly(0)),
        "set": Subcommand(change_quota),
        "reset": Subcommand(change_quota),
    },
    default="show",
    usage=QUOTA_USAGE,
    admin_only=True,
    private=True,
)

BUDGET_COMMANDS = (USAGE, QUOTA)
