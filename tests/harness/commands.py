"""Running one slash command against a set of command services, as a platform would hand it over."""

from __future__ import annotations

from bot.commands.registry import CommandContext
from bot.commands.services import CommandServices
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


async def run_command(services: CommandServices, text: str, *, admin: bool, channel: str = "c1") -> RecordingResponder:
    """`text` (a command line) typed by a member (or an admin) in `channel`; what was answered."""
    incoming = message(text, admin=admin, channel=channel)
    assert incoming.command is not None
    responder = RecordingResponder()
    await services.commands.run(CommandContext(services, incoming, incoming.command, responder))
    return responder
