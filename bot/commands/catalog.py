"""Every command the bot has, in one registry: the engine dispatches with it, the platforms register it."""

from __future__ import annotations

from bot.commands.basic import BASIC_COMMANDS
from bot.commands.budget import BUDGET_COMMANDS
from bot.commands.catchup import CATCHUP
from bot.commands.channel import CHANNEL_COMMANDS
from bot.commands.dashboard import DASHBOARD_COMMANDS
from bot.commands.digest import DIGEST
from bot.commands.media import MEDIA_COMMANDS
from bot.commands.prompt import PROMPT
from bot.commands.registry import CommandRegistry
from bot.commands.search import SEARCH
from bot.commands.tools import TOOLS


def command_registry(prefix: str = "") -> CommandRegistry:
    """All commands, their public names behind `prefix` (COMMAND_PREFIX)."""
    return CommandRegistry(
        [
            *BASIC_COMMANDS,
            *BUDGET_COMMANDS,
            *MEDIA_COMMANDS,
            PROMPT,
            SEARCH,
            CATCHUP,
            DIGEST,
            *CHANNEL_COMMANDS,
            TOOLS,
            *DASHBOARD_COMMANDS,
        ],
        prefix=prefix,
    )
