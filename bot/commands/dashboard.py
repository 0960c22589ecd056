"""/dashboard: a private one-time link to the web dashboard."""

from __future__ import annotations

from bot.commands.registry import CommandContext, CommandSpec
from bot.dashboard.signin import dashboard_served
from bot.errors import BadCommand

NOT_SERVED = (
    "The web dashboard is not served by this bot. An operator can turn it on by setting PORT "
    "(and PUBLIC_URL when people reach the bot through a proxy)."
)


async def dashboard(ctx: CommandContext) -> None:
    """Answer the asker privately with a link that signs them in once, as who they are here."""
    if ctx.command.args:
        raise DASHBOARD.bad_usage("/dashboard takes nothing after it.")
    if not dashboard_served(ctx.services.settings):
        raise BadCommand(NOT_SERVED)
    signin = ctx.services.signin
    link = await signin.issue_link(ctx.message)
    role = "an admin" if ctx.message.author.is_admin else "a member"
    await ctx.responder.send_text(
        f"Your dashboard link (works once, for {signin.link_minutes} minutes; it signs you in as {role} "
        f"of this team — do not share it):\n{link}",
    )


DASHBOARD = CommandSpec(
    "dashboard", "/dashboard", "a private link to the web dashboard: spend, budgets, prompts", dashboard, private=True
)

DASHBOARD_COMMANDS = (DASHBOARD,)
