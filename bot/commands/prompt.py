"""/prompt: the team's shared prompt experiments."""

from __future__ import annotations

import re
import shlex

from bot.commands.registry import CommandContext, CommandSpec
from bot.errors import BadCommand
from bot.prompts.assignments import split_assignments
from bot.prompts.experiments import parse_ref, parse_version
from bot.prompts.template import variables

PROMPT_USAGE = (
    "/prompt save <name> [system=…] [model=…] [temperature=…] <text with {variables}> | show <name>[@vN] | "
    "list [filter] | diff <name> vA vB | run <name>[@vN] var=value … [model=…] [temperature=…] | "
    "compare <name> [versions=v1,v2] [models=a,b] [temperatures=0,0.7] var=value … | rate <run> <1-5> [comment] | "
    "history <name> | export [name] | delete <name>"
)

# save's raw text: the name, then leading options, then the template exactly as typed.
_SAVE = re.compile(
    r"\s*save\s+(?P<name>\S+)(?P<options>(?:\s+(?:system|model|temperature)=(?:\"[^\"]*\"|'[^']*'|\S+))*)\s*(?P<text>.*)",
    re.DOTALL | re.IGNORECASE,
)
# Replies longer than this go out as a file (platforms split messages, but a grid reads better whole).
INLINE_LIMIT = 3_500


async def prompt(ctx: CommandContext) -> None:
    """Dispatch /prompt's subcommands."""
    experiments = ctx.services.prompts
    message, responder = ctx.message, ctx.responder
    words = list(ctx.command.args)
    sub = words[0].lower() if words else ""
    rest = words[1:]
    team = message.team_id
    if sub == "save":
        match = _SAVE.fullmatch(ctx.command.text)
        if match is None:
            raise PROMPT.bad_usage("Name the prompt and give its text.")
        _, options = split_assignments(shlex.split(match.group("options")))
        saved = await experiments.save(message, match.group("name"), match.group("text"), options)
        names = ", ".join(variables(saved.template)) or "none"
        await responder.send_text(f"Saved {saved.name} v{saved.version} (variables: {names}).")
    elif sub == "show" and len(rest) in (1, 2):
        name, version = parse_ref(rest[0])
        if len(rest) == 2:
            version = parse_version(rest[1])
        await responder.send_text(await experiments.describe(team, name, version))
    elif sub == "list" and len(rest) <= 1:
        await responder.send_text(await experiments.listing(team, rest[0] if rest else None))
    elif sub == "diff" and len(rest) == 3:
        text = await experiments.diff(team, rest[0].lower(), parse_version(rest[1]), parse_version(rest[2]))
        await responder.send_text(f"```diff\n{text}\n```" if text.startswith("---") else text)
    elif sub == "run" and rest:
        positional, values = split_assignments(rest[1:])
        if positional:
            raise BadCommand(f"Give variables as name=value; {positional[0]!r} has no '='.")
        footer = await experiments.run(message, responder, rest[0], values)
        await responder.send_text(footer)
    elif sub == "compare" and rest:
        positional, values = split_assignments(rest[1:])
        if positional:
            raise BadCommand(f"Give variables as name=value; {positional[0]!r} has no '='.")
        await responder.show_status("running the comparison…")
        report = await experiments.compare(message, rest[0], values)
        await _send_long(ctx, report, "prompt-compare.txt")
    elif sub == "rate" and len(rest) >= 2:
        await responder.send_text(await experiments.rate(message, rest[0], rest[1], " ".join(rest[2:])))
    elif sub == "history" and len(rest) == 1:
        await responder.send_text(await experiments.history(team, rest[0].lower()))
    elif sub == "export" and len(rest) <= 1:
        data = await experiments.export_json(team, rest[0].lower() if rest else None)
        await responder.send_file(data, "prompts.json", "application/json", caption="The prompt library")
    elif sub == "delete" and len(rest) == 1:
        await responder.send_text(await experiments.delete(message, rest[0].lower()))
    else:
        raise BadCommand(f"Usage: {PROMPT_USAGE}")


async def _send_long(ctx: CommandContext, text: str, filename: str) -> None:
    if len(text) <= INLINE_LIMIT:
        await ctx.responder.send_text(text)
        return
    first = text[:800].rsplit("\n", 1)[0]
    await ctx.responder.send_file(
        text.encode(), filename, "text/plain", caption=f"{first}\n… (the whole report is attached)"
    )


PROMPT = CommandSpec("prompt", PROMPT_USAGE, "save, run, compare and rate the team's shared prompts", prompt)
