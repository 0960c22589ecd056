"""The everyday commands: /ask, /reset, /forget, /help."""

from __future__ import annotations

import secrets

from bot.commands.registry import CommandContext, CommandSpec
from bot.media.speech import parse_voice
from bot.wording import tally


async def ask(ctx: CommandContext) -> None:
    """One-shot question, no history; with voice=on (or a voice's name) the answer is spoken too."""
    voice, question = parse_voice(ctx.command.args, ctx.command.text)
    if not question.strip() and not ctx.message.attachments:
        raise ASK.bad_usage("Ask something after /ask.")
    speaker = ctx.services.speaker
    if voice is not None:
        voice = speaker.check(".", voice)  # an unknown voice is refused before the question is paid for
    completion = await ctx.services.conversations.ask(question, ctx.message, ctx.responder)
    if voice is not None:
        if len(completion.text) > speaker.spec.max_chars:
            await ctx.responder.send_text(
                f"(The answer is {len(completion.text):,} characters, too long to speak: "
                f"the voice reads at most {speaker.spec.max_chars:,}. Nothing was charged for speech.)"
            )
            return
        await speaker.speak(ctx.message, ctx.responder, completion.text, voice)


async def reset(ctx: CommandContext) -> None:
    """End this thread's conversation."""
    ended = await ctx.services.conversations.reset(ctx.message)
    text = "Started a fresh conversation." if ended else "There was no conversation here yet; nothing to reset."
    await ctx.responder.send_text(text)


async def forget(ctx: CommandContext) -> None:
    """Delete the user's stored data in this team, after a confirmation."""
    if ctx.command.args != ("confirm",):
        await ctx.responder.send_text(
            "This deletes everything you said to me in this team (and my replies to it), your prompt runs and "
            "ratings, signs you out of the dashboard, and replaces your id with a pseudonym in the usage ledger "
            "and on prompts you wrote. "
            "To go ahead: /forget confirm",
        )
        return
    message = ctx.message
    # A random pseudonym, new each time: a hash of team and user could be reversed by anyone with the
    # user list. Today's spend keeps counting against the user's daily limits (forgetting is no reset).
    pseudonym = f"forgotten-{secrets.token_hex(8)}"
    today = ctx.services.budget.periods().day
    counts = await ctx.services.personal_data.forget_user(message.team_id, message.author.id, pseudonym, keep_day=today)
    await ctx.responder.send_text(f"Done. Removed or pseudonymized: {tally(counts)}.")


async def help_(ctx: CommandContext) -> None:
    """List the commands this user may run."""
    platforms = ctx.services.platforms
    lines = [platforms.help_intro(ctx.message.platform)]
    hidden = []
    commands = ctx.services.commands
    for spec in commands:
        if spec.admin_only and not ctx.message.author.is_admin:
            hidden.append(f"/{commands.public_name(spec.name)}")
            continue
        lines.append(f"  {commands.usage(spec)} — {spec.summary}")
    if hidden:
        how = platforms.becoming_admin(ctx.message.platform)
        lines.append(f"Admins also have {', '.join(hidden)}. {how}".rstrip())
    await ctx.responder.send_text("\n".join(lines))


ASK = CommandSpec(
    "ask", "/ask [voice=on|<voice>] <question>", "a one-shot answer that is not part of the conversation", ask
)
RESET = CommandSpec("reset", "/reset", "forget this thread's conversation and start a fresh one", reset)
HELP = CommandSpec("help", "/help", "this list", help_, private=True)
FORGET = CommandSpec(
    "forget", "/forget [confirm]", "delete what you said to me and your personal data", forget, private=True
)

BASIC_COMMANDS = (ASK, RESET, FORGET, HELP)
