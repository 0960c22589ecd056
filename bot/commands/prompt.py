"""/prompt: the team's shared prompt experiments."""

from __future__ import annotations

import re
import shlex

from bot.commands.registry import CommandContext, CommandSpec, Subcommand, at_least, at_most, exactly
from bot.errors import BadCommand
from bot.prompts.assignments import split_assignments
from bot.prompts.experiments import parse_ref, parse_version
from bot.prompts.template import variables

# save's raw text: the name, then leading options, then the template exactly as typed.
_SAVE = re.compile(
    r"\s*save\s+(?P<name>\S+)(?P<options>(?:\s+(?:system|model|temperature)=(?:\"[^\"]*\"|'[^']*'|\S+))*)\s*(?P<text>.*)",
    re.DOTALL | re.IGNORECASE,
)
# Replies longer than this go out as a file (platforms split messages, but a grid reads better whole).
INLINE_LIMIT = 3_500


async def save(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Save a new version of a prompt, options and template as typed."""
    match = _SAVE.fullmatch(ctx.command.text)
    if match is None:
        raise PROMPT.bad_usage("Name the prompt and give its text.")
    _, options = split_assignments(shlex.split(match.group("options")))
    saved = await ctx.services.prompts.save(ctx.message, match.group("name"), match.group("text"), options)
    names = ", ".join(variables(saved.template)) or "none"
    await ctx.responder.send_text(f"Saved {saved.name} v{saved.version} (variables: {names}).")


async def show(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """A prompt's text and settings, at its latest or a given version."""
    name, version = parse_ref(rest[0])
    if len(rest) == 2:
        version = parse_version(rest[1])
    await ctx.responder.send_text(await ctx.services.prompts.describe(ctx.message.team_id, name, version))


async def listing(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The team's prompts, optionally filtered."""
    await ctx.responder.send_text(await ctx.services.prompts.listing(ctx.message.team_id, rest[0] if rest else None))


async def diff(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """What changed between two versions."""
    name, old, new = rest[0].lower(), parse_version(rest[1]), parse_version(rest[2])
    text = await ctx.services.prompts.diff(ctx.message.team_id, name, old, new)
    await ctx.responder.send_text(f"```diff\n{text}\n```" if text.startswith("---") else text)


def _values(words: tuple[str, ...]) -> dict[str, str]:
    positional, values = split_assignments(words)
    if positional:
        raise BadCommand(f"Give variables as name=value; {positional[0]!r} has no '='.")
    return values


async def run(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Run a prompt with its variables filled in."""
    values = _values(rest[1:])
    footer = await ctx.services.prompts.run(ctx.message, ctx.responder, rest[0], values)
    await ctx.responder.send_text(footer)


async def compare(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Run a grid of versions × models × temperatures and report side by side."""
    values = _values(rest[1:])
    await ctx.responder.show_status("running the comparison…")
    report = await ctx.services.prompts.compare(ctx.message, rest[0], values)
    await _send_long(ctx, report, "prompt-compare.txt")


async def rate(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Rate a run from 1 to 5, with an optional comment."""
    await ctx.responder.send_text(await ctx.services.prompts.rate(ctx.message, rest[0], rest[1], " ".join(rest[2:])))


async def history(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """A prompt's versions, runs and ratings."""
    await ctx.responder.send_text(await ctx.services.prompts.history(ctx.message.team_id, rest[0].lower()))


async def export(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """The library (or one prompt) as a JSON file."""
    data = await ctx.services.prompts.export_json(ctx.message.team_id, rest[0].lower() if rest else None)
    await ctx.responder.send_file(data, "prompts.json", "application/json", caption="The prompt library")


async def delete(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Delete a prompt (its author or an admin)."""
    await ctx.responder.send_text(await ctx.services.prompts.delete(ctx.message, rest[0].lower()))


async def _send_long(ctx: CommandContext, text: str, filename: str) -> None:
    if len(text) <= INLINE_LIMIT:
        await ctx.responder.send_text(text)
        return
    first = text[:800].rsplit("\n", 1)[0]
    await ctx.responder.send_file(
        text.encode(), filename, "text/plain", caption=f"{first}\n… (the whole report is attached)"
    )


PROMPT = CommandSpec.table(
    "prompt",
    "save, run, compare and rate the team's shared prompts",
    {
        "save": Subcommand(save, "<name> [system=…] [model=…] [temperature=…] <text with {variables}>"),
        "show": Subcommand(show, "<name>[@vN]", range(1, 3)),
        "list": Subcommand(listing, "[filter]", at_most(1)),
        "diff": Subcommand(diff, "<name> vA vB", exactly(3)),
        "run": Subcommand(run, "<name>[@vN] var=value … [model=…] [temperature=…]", at_least(1)),
        "compare": Subcommand(
            compare, "<name> [versions=v1,v2] [models=a,b] [temperatures=0,0.7] var=value …", at_least(1)
        ),
        "rate": Subcommand(rate, "<run> <1-5> [comment]", at_least(2)),
        "history": Subcommand(history, "<name>", exactly(1)),
        "export": Subcommand(export, "[name]", at_most(1)),
        "delete": Subcommand(delete, "<name>", exactly(1)),
    },
)
