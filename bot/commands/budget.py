"""/usage and /quota: spend and limits."""

from __future__ import annotations

import asyncio

from bot.billing.quota_admin import QUOTA_USAGE
from bot.billing.usage_report import personal_usage, team_month_png, team_usage
from bot.commands.registry import CommandContext, CommandSpec, admins_only


async def usage(ctx: CommandContext) -> None:
    """Your own usage; `/usage team` (admins) the team's month with a chart."""
    budget, message = ctx.services.budget, ctx.message
    if ctx.command.args[:1] == ("team",):
        if not message.author.is_admin:
            raise admins_only(message, "/usage team is for admins only; /usage shows your own.")
        text, month = await team_usage(budget, message.team_id)
        chart = await asyncio.to_thread(team_month_png, month)
        await ctx.responder.send_text(text, private=True)
        await ctx.responder.send_file(
            chart, f"team-spend-{month.month}.png", "image/png", caption=f"Team spend per day in {month.month}"
        )
        return
    if ctx.command.args:
        raise USAGE.bad_usage(f"/usage takes nothing (your own) or team (admins), not {ctx.command.args[0]!r}.")
    await ctx.responder.send_text(await personal_usage(budget, message.team_id, message.author.id), private=True)


async def quota(ctx: CommandContext) -> None:
    """Show or change the team's limits (admins)."""
    args = list(ctx.command.args)
    admin = ctx.services.quota
    if not args or args == ["show"]:
        text = await admin.show(ctx.message.team_id)
    else:
        text = await admin.apply(ctx.message.team_id, args, ctx.message.author.id, ctx.services.clock())
    await ctx.responder.send_text(text, private=True)


USAGE = CommandSpec("usage", "/usage [team]", "your spend and what is left today and this month", usage, private=True)
QUOTA = CommandSpec("quota", QUOTA_USAGE, "show or set budgets (admins)", quota, admin_only=True, private=True)

BUDGET_COMMANDS = (USAGE, QUOTA)
