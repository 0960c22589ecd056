"""Slash commands: the same names on every platform. Adapters parse; the engine dispatches."""

from bot.commands.parser import parse_command_line
from bot.commands.registry import CommandContext, CommandRegistry, CommandSpec

__all__ = ["CommandContext", "CommandRegistry", "CommandSpec", "parse_command_line"]
