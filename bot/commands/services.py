"""What command handlers may use: the services they need, built once by the composition root.

A handler sees these, never the engine, so a command is tested with the two or three services it uses
(the others are left out and fail loudly if touched) and the engine imports no command module's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.billing.budget import Budget
    from bot.billing.quota_admin import QuotaAdmin
    from bot.catchup import CatchUps
    from bot.chat.channels import Channels
    from bot.chat.conversations import Conversations
    from bot.clock import Clock
    from bot.commands.registry import CommandRegistry
    from bot.dashboard.signin import SignIn
    from bot.mcp.channels import ChannelToolServers
    from bot.media.images import ImageMaker
    from bot.media.speech import Speaker
    from bot.media.transcription import Transcriber
    from bot.memory.semantic import Memory
    from bot.prompts.experiments import PromptExperiments
    from bot.providers.registry import Providers
    from bot.settings import Settings
    from storage.digests import Digests


class PersonalData(Protocol):
    """What /forget needs of the store: a person's data deleted or pseudonymized in a team."""

    async def forget_user(
        self, team_id: str, user_id: str, pseudonym: str, *, keep_day: str | None = None
    ) -> dict[str, int]:
        """Delete a user's data in a team; pseudonymize what the team's records must keep."""


class PlatformTexts(Protocol):
    """What commands say per platform (bot/platform.py's Platforms): kept narrow, so commands know no adapter."""

    def becoming_admin(self, name: str) -> str:
        """How one becomes an admin on platform `name`."""

    def help_intro(self, name: str) -> str:
        """/help's first line on platform `name`."""


class NotGiven:
    """A service left out of a context (a test's): any use of it fails, naming what was wanted."""

    def __getattr__(self, attribute: str) -> Any:
        raise LookupError(f"this command context was built without the service that has .{attribute}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise LookupError("this command context was built without the service called here (the clock)")


NOT_GIVEN: Any = NotGiven()


@dataclass(frozen=True)
class CommandServices:
    """The services commands use. `settings`, `commands` (for /help and usage lines) and `platforms` (how one
    becomes an admin where, /help's first line) are always there."""

    settings: Settings
    commands: CommandRegistry
    platforms: PlatformTexts
    clock: Clock = NOT_GIVEN
    conversations: Conversations = NOT_GIVEN
    prompts: PromptExperiments = NOT_GIVEN
    images: ImageMaker = NOT_GIVEN
    speaker: Speaker = NOT_GIVEN
    transcriber: Transcriber = NOT_GIVEN
    memory: Memory = NOT_GIVEN
    budget: Budget = NOT_GIVEN
    quota: QuotaAdmin = NOT_GIVEN
    channels: Channels = NOT_GIVEN
    signin: SignIn = NOT_GIVEN
    personal_data: PersonalData = NOT_GIVEN
    catchups: CatchUps = NOT_GIVEN
    tool_servers: ChannelToolServers = NOT_GIVEN
    digests: Digests = NOT_GIVEN
    providers: Providers = NOT_GIVEN

    def missing(self) -> list[str]:
        """The services left out (the composition root gives every one)."""
        return [f.name for f in fields(self) if getattr(self, f.name) is NOT_GIVEN]
