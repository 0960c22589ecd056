"""Commands with subcommands: the table dispatches, and writes the usage and wrong-usage messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import PLATFORMS
from bot.commands.catalog import command_registry
from bot.commands.registry import CommandContext, CommandRegistry, CommandSpec, Subcommand, exactly
from bot.commands.services import CommandServices
from bot.errors import BadCommand
from bot.settings import load_settings
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


async def echo(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    await ctx.responder.send_text(f"{ctx.command.args[:1]} {rest}")


LAMP = CommandSpec.table(
    "lamp",
    "a lamp",
    {"on": Subcommand(echo, "<colour>", exactly(1)), "off": Subcommand(echo), "blink": Subcommand(echo, "[times]")},
    default="off",
)


async def run(line: str, tmp_path: Path, registry: CommandRegistry | None = None) -> RecordingResponder:
    settings = load_settings(env_file=None, openai_api_key="k", database_url=f"sqlite:///{tmp_path}/t.db")
    services = CommandServices(settings=settings, commands=registry or CommandRegistry([LAMP]), platforms=PLATFORMS)
    incoming = message(line)
    assert incoming.command is not None
    responder = RecordingResponder()
    await services.commands.run(CommandContext(services, incoming, incoming.command, responder))
    return responder


def test_the_usage_line_is_written_from_the_table() -> None:
    assert LAMP.usage == "/lamp on <colour> | off | blink [times]"


async def test_the_first_word_picks_the_subcommand_which_gets_the_words_after_it(tmp_path: Path) -> None:
    assert (await run("/lamp ON red", tmp_path)).texts == [("('ON',) ('red',)", False)]
    assert (await run("/lamp", tmp_path)).texts == [("() ()", False)]


async def test_an_unknown_word_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(BadCommand) as refused:
        await run("/lamp dim", tmp_path)
    assert (
        refused.value.message
        == "/lamp takes on, off or blink, not 'dim'.\nUsage: /lamp on <colour> | off | blink [times]"
    )


async def test_a_wrong_number_of_words_shows_that_subcommands_usage(tmp_path: Path) -> None:
    with pytest.raises(BadCommand, match=r"^/lamp on takes <colour>\.\nUsage: /lamp on"):
        await run("/lamp on red green", tmp_path)


async def test_help_shows_the_usage_the_tables_write(tmp_path: Path) -> None:
    listed = (await run("/help", tmp_path, command_registry())).texts[0][0]
    assert "/persona show | set <text> | use <prompt-name>[@vN] [variable=value …] | clear" in listed
    assert "/prompt save <name> [system=…]" in listed and "| delete <name> — save, run, compare" in listed
