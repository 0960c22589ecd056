"""/persona and /model: a channel's system prompt and model (admins change them)."""

from __future__ import annotations

from dataclasses import replace

from bot.commands.registry import CommandContext, CommandSpec, admins_only
from bot.prompts.assignments import split_assignments

PERSONA_USAGE = "/persona show | set <text> | use <prompt-name>[@vN] [variable=value …] | clear"
MODEL_USAGE = "/model show | set <name>"


def _require_admin(ctx: CommandContext, what: str) -> None:
    if not ctx.message.author.is_admin:
        raise admins_only(ctx.message, f"Only admins can change {what}; /{ctx.command.name} show is open to everyone.")


async def persona(ctx: CommandContext) -> None:
    """Show or change the channel's system prompt; new conversations in the channel use it."""
    services, message = ctx.services, ctx.message
    words = list(ctx.command.args)
    sub = words[0].lower() if words else "show"
    current = await services.channels.settings(message)
    if sub == "show":
        if current.persona is None:
            text = f"This channel uses the default system prompt:\n{services.settings.system_prompt}"
        else:
            source = f" (from {current.persona_source})" if current.persona_source else ""
            text = f"This channel's persona{source}:\n{current.persona}"
        await ctx.responder.send_text(text)
        return
    _require_admin(ctx, "the persona")
    if sub == "set":
        text = ctx.command.text.split(None, 1)[1].strip() if len(words) > 1 else ""
        if not text:
            raise PERSONA.bad_usage("Give the persona's text after /persona set.")
        new, said = replace(current, persona=text, persona_source=None), "Persona set"
    elif sub == "use" and len(words) >= 2:
        extra, values = split_assignments(words[2:])
        if extra:
            raise PERSONA.bad_usage(
                f"After the prompt's name, give only its variables as name=value, not {extra[0]!r}."
            )
        text, source = await services.prompts.persona(message.team_id, words[1], values)
        new, said = replace(current, persona=text, persona_source=source), f"Persona set from {source}"
    elif sub == "clear":
        new, said = replace(current, persona=None, persona_source=None), "Persona cleared (the default applies)"
    else:
        raise PERSONA.bad_usage(f"/persona takes show, set, use or clear, not {sub!r}.")
    await services.channels.change(message, new)
    await ctx.responder.send_text(f"{said}; new conversations in this channel use it (/reset to start one).")


async def model(ctx: CommandContext) -> None:
    """Show or change the channel's chat model, from the allow-list."""
    services, message = ctx.services, ctx.message
    words = list(ctx.command.args)
    current = await services.channels.settings(message)
    if not words or words == ["show"]:
        chosen = current.model or services.settings.chat_model
        allowed = ", ".join(services.settings.allowed_models)
        await ctx.responder.send_text(f"This channel uses {chosen}. Allowed: {allowed}.")
        return
    allowed = ", ".join(services.settings.allowed_models)
    if words[0].lower() == "set" and len(words) == 1:
        raise MODEL.bad_usage(f"Name the model after /model set. Allowed here: {allowed}.")
    if words[0].lower() != "set":
        raise MODEL.bad_usage(f"/model takes show or set, not {words[0]!r}.")
    if len(words) != 2:
        raise MODEL.bad_usage("Give one model name after /model set (model names have no spaces).")
    _require_admin(ctx, "the model")
    chosen = services.prompts.check_model(words[1])
    # Choosing the default stores "default", so the channel follows CHAT_MODEL if the operator changes it.
    chosen_or_default = None if chosen == services.settings.chat_model else chosen
    await services.channels.change(message, replace(current, model=chosen_or_default))
    await ctx.responder.send_text(f"This channel now uses {chosen}.")


PERSONA = CommandSpec("persona", PERSONA_USAGE, "the channel's system prompt (admins change it)", persona)
MODEL = CommandSpec("model", MODEL_USAGE, "the channel's model (admins change it)", model)

CHANNEL_COMMANDS = (PERSONA, MODEL)
