"""/usage and /quota: spend and limits."""

from __future__ import annotations

import asyncio

from bot.billing.quota_admin import QUOTA_USAGE
from bot.billing.usage_report import daily_chart_png, personal_usage, team_usage
from bot.commands.registry import CommandContext, CommandSpec
from bot.errors import NotAllowed


async def usage(ctx: CommandContext) -> None:
    """Your own usage; `/usage team` (admins) the team's month with a chart."""
    engine, message = ctx.engine, ctx.message
    if ctx.command.args[:1] == ("team",):
        if not message.author.is_admin:
            raise NotAllowed("/usage team is for admins only; /usage shows your own.")
        text, series = await team_usage(engine.budget, message.team_id)
        chart = await asyncio.to_thread(daily_chart_png, series, "Team spend per day, last 30 days")
        await ctx.responder.send_text(text, private=True)
        await ctx.responder.send_file(chart, "team-usage.png", "image/png", caption="Daily spend, last 30 days")
        return
    if ctx.command.args:
        raise USAGE.bad_usage(f"Unknown /usage option {ctx.command.args[0]!r}.")
    await ctx.responder.send_text(await personal_usage(engine.budget, message.team_id, message.author.id), private=True)


async def quota(ctx: CommandContext) -> None:
    """Show or change the team's limits (admins)."""
    args = list(ctx.command.args)
    admin = ctx.engine.quota_admin
    if not args or args == ["show"]:
        text = await admin.show(ctx.message.team_id)
    else:
        text = await admin.apply(ctx.message.team_id, args, ctx.message.author.id, ctx.engine.budget.now())
    await ctx.responder.send_text(text, private=True)


USAGE = CommandSpec("usage", "/usage [team]", "your spend and what is left today and this month", usage, private=True)
QUOTA = CommandSpec("quota", QUOTA_USAGE, "show or set budgets (admins)", quota, admin_only=True, private=True)

BUDGET_COMMANDS = (USAGE, QUOTA)
