"""/persona and /model: a channel's system prompt and model (admins change them)."""

from __future__ import annotations

from dataclasses import replace

from bot.commands.registry import CommandContext, CommandSpec, Subcommand, admins_only, at_least, exactly
from bot.prompts.assignments import split_assignments
from bot.providers.llm import effort
from storage.records import ChannelSettings

CHANGED = "{said}; new conversations in this channel use it (/reset to start one)."


def _require_admin(ctx: CommandContext, what: str) -> None:
    if not ctx.message.author.is_admin:
        raise admins_only(ctx, f"Only admins can change {what}; /{ctx.command.name} show is open to everyone.")


async def _change_persona(ctx: CommandContext, new: ChannelSettings, said: str) -> None:
    await ctx.services.channels.change(ctx.message, new)
    await ctx.responder.send_text(CHANGED.format(said=said))


async def show_persona(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The channel's system prompt (or the default); new conversations in the channel use it."""
    current = await ctx.services.channels.settings(ctx.message)
    if current.persona is None:
        text = f"This channel uses the default system prompt:\n{ctx.services.settings.system_prompt}"
    else:
        source = f" (from {current.persona_source})" if current.persona_source else ""
        text = f"This channel's persona{source}:\n{current.persona}"
    await ctx.responder.send_text(text)


async def set_persona(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The persona's text, as typed."""
    _require_admin(ctx, "the persona")
    text = ctx.command.text.split(None, 1)[1].strip() if rest else ""
    if not text:
        raise PERSONA.bad_usage("Give the persona's text after /persona set.")
    current = await ctx.services.channels.settings(ctx.message)
    await _change_persona(ctx, replace(current, persona=text, persona_source=None), "Persona set")


async def use_persona(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The persona from a saved prompt, its variables filled in."""
    _require_admin(ctx, "the persona")
    extra, values = split_assignments(rest[1:])
    if extra:
        raise PERSONA.bad_usage(f"After the prompt's name, give only its variables as name=value, not {extra[0]!r}.")
    text, source = await ctx.services.prompts.persona(ctx.message.team_id, rest[0], values)
    current = await ctx.services.channels.settings(ctx.message)
    await _change_persona(ctx, replace(current, persona=text, persona_source=source), f"Persona set from {source}")


async def clear_persona(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Back to the default system prompt."""
    _require_admin(ctx, "the persona")
    current = await ctx.services.channels.settings(ctx.message)
    cleared = replace(current, persona=None, persona_source=None)
    await _change_persona(ctx, cleared, "Persona cleared (the default applies)")


async def show_model(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The channel's chat model and the allow-list."""
    current = await ctx.services.channels.settings(ctx.message)
    chosen = current.model or ctx.services.settings.chat_model
    thinking = f" with reasoning effort {current.reasoning_effort}" if current.reasoning_effort else ""
    shown = ctx.services.providers.shown
    await ctx.responder.send_text(f"This channel uses {shown(chosen)}{thinking}. Allowed: {_allowed(ctx)}.")


def _allowed(ctx: CommandContext) -> str:
    """The allow-list, each model with its provider when PROVIDERS adds any."""
    return ", ".join(ctx.services.providers.shown(m) for m in ctx.services.settings.allowed_models)


async def set_model(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Change the channel's chat model, from the allow-list."""
    settings = ctx.services.settings
    if not rest:
        raise MODEL.bad_usage(f"Name the model after /model set. Allowed here: {_allowed(ctx)}.")
    extra, values = split_assignments(rest[1:])
    if extra or set(values) - {"effort"}:
        raise MODEL.bad_usage("Give one model name after /model set, then optionally effort=low|medium|high.")
    chosen_effort = values.get("effort")
    if chosen_effort is not None and effort(chosen_effort) is None:
        raise MODEL.bad_usage(f"effort is low, medium or high (for reasoning models), not {chosen_effort!r}.")
    _require_admin(ctx, "the model")
    chosen = ctx.services.prompts.check_model(rest[0])
    # Choosing the default stores "default", so the channel follows CHAT_MODEL if the operator changes it.
    chosen_or_default = None if chosen == settings.chat_model else chosen
    current = await ctx.services.channels.settings(ctx.message)
    new = replace(current, model=chosen_or_default, reasoning_effort=chosen_effort)
    await ctx.services.channels.change(ctx.message, new)
    thinking = f" with reasoning effort {chosen_effort}" if chosen_effort else ""
    await ctx.responder.send_text(f"This channel now uses {ctx.services.providers.shown(chosen)}{thinking}.")


PERSONA = CommandSpec.table(
    "persona",
    "the channel's system prompt (admins change it)",
    {
        "show": Subcommand(show_persona),
        "set": Subcommand(set_persona, "<text>"),
        "use": Subcommand(use_persona, "<prompt-name>[@vN] [variable=value …]", at_least(1)),
        "clear": Subcommand(clear_persona),
    },
    default="show",
)
MODEL = CommandSpec.table(
    "model",
    "the channel's model (admins change it)",
    {"show": Subcommand(show_model, takes=exactly(0)), "set": Subcommand(set_model, "<name> [effort=low|medium|high]")},
    default="show",
)

CHANNEL_COMMANDS = (PERSONA, MODEL)
