"""Messages as an adapter would build them, for tests that drive the engine without a platform."""

from __future__ import annotations

from bot.commands import parse_command_line
from bot.messages import Attachment, Author, IncomingMessage


def message(
    text: str,
    *,
    user: str = "u1",
    channel: str = "c1",
    thread: str = "",
    admin: bool = False,
    platform: str = "console",
    team: str = "local",
    attachments: tuple[Attachment, ...] = (),
) -> IncomingMessage:
    """A message as an adapter would build it; a leading `/` makes it a command."""
    return IncomingMessage(
        platform=platform,
        team_id=team,
        channel_id=channel,
        thread_id=thread,
        author=Author(id=user, display_name=user, is_admin=admin),
        text=text,
        command=parse_command_line(text),
        attachments=attachments,
    )
