"""The first commands: /ask, /reset, /help."""

from __future__ import annotations

from bot.commands.registry import CommandContext, CommandSpec


async def ask(ctx: CommandContext) -> None:
    """One-shot question, no history."""
    if not ctx.command.text:
        raise ASK.bad_usage("Ask something after /ask.")
    await ctx.engine.conversations.ask(ctx.command.text, ctx.message, ctx.responder)


async def reset(ctx: CommandContext) -> None:
    """End this thread's conversation."""
    ended = await ctx.engine.conversations.reset(ctx.message)
    text = "Started a fresh conversation." if ended else "There was no conversation here yet; nothing to reset."
    await ctx.responder.send_text(text)


async def help_(ctx: CommandContext) -> None:
    """List the commands this user may run."""
    lines = ["Mention me (or DM me) to chat; the thread is the conversation. Commands:"]
    for spec in ctx.engine.commands:
        if spec.admin_only and not ctx.message.author.is_admin:
            continue
        lines.append(f"  {spec.usage} — {spec.summary}")
    await ctx.responder.send_text("\n".join(lines), private=True)


ASK = CommandSpec("ask", "/ask <question>", "a one-shot answer that is not part of the conversation", ask)
RESET = CommandSpec("reset", "/reset", "forget this thread's conversation and start a fresh one", reset)
HELP = CommandSpec("help", "/help", "this list", help_)

BASIC_COMMANDS = (ASK, RESET, HELP)
