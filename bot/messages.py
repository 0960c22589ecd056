"""The normalized message every adapter maps its platform's events onto."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.directory import Directory, OnlyThisChannel
from storage.records import ConversationKey

__all__ = ["Attachment", "Author", "Command", "ConversationKey", "IncomingMessage", "Platform"]

# A platform's name, one of the composition root's list (`PLATFORMS` in bot/app.py): "discord", "slack", "console".
Platform = str


@dataclass(frozen=True)
class Author:
    """Who sent a message, with admin rights as the platform's own roles grant them."""

    id: str
    display_name: str
    is_admin: bool = False


@dataclass(frozen=True)
class Attachment:
    """A file on a message; `read()` downloads it on demand with the platform's auth and a size cap."""

    name: str
    content_type: str
    size: int
    read: Callable[[], Awaitable[bytes]] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Command:
    """A slash command: its name (without the slash), raw argument text and the text split into words."""

    name: str
    text: str = ""
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncomingMessage:
    """One message or slash command, in the same shape whatever platform it came from."""

    platform: Platform
    team_id: str
    channel_id: str
    author: Author
    text: str
    message_id: str = ""
    thread_id: str = ""
    is_direct: bool = False
    command: Command | None = None
    attachments: tuple[Attachment, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The adapter's answers about channels and links for this author (see bot/directory.py).
    platform_directory: Directory | None = field(default=None, repr=False, compare=False)

    @property
    def directory(self) -> Directory:
        """The platform's directory for this author; only the current channel when the adapter gives none."""
        return self.platform_directory or OnlyThisChannel(self.channel_id)

    @property
    def conversation_key(self) -> ConversationKey:
        """The (platform, team, channel, thread) key of the conversation this message belongs to."""
        return ConversationKey(self.platform, self.team_id, self.channel_id, self.thread_id)
