"""A dashboard visitor's role, decided on each request by the platform, as the chat decides it for each message.

A session remembers who signed in, not what they may do: an admin demoted on Slack or Discord loses the
admin pages on their next request (Slack: once the few minutes the chat also caches users.info are over).
Each platform adapter running in this process answers for its own people with the rule it applies to their
messages; a platform this process does not serve, or one that cannot answer, makes the visitor a member.
"""

from __future__ import annotations

import logging
from typing import Protocol

from storage.signins import SignInGrant

log = logging.getLogger(__name__)


class RoleSource(Protocol):
    """A platform's answer: whether a person is an admin of a team now."""

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """By the same rule as the author of a message from them; False when the platform cannot say."""


class Roles:
    """The role sources of the platforms this process serves, by platform."""

    def __init__(self) -> None:
        self._sources: dict[str, RoleSource] = {}

    def serve(self, platform: str, source: RoleSource) -> None:
        """`source` answers for `platform`'s people from now on."""
        self._sources[platform] = source

    def source(self, platform: str) -> RoleSource | None:
        """Who answers for `platform` (None: this process does not serve it)."""
        return self._sources.get(platform)

    async def is_admin(self, grant: SignInGrant) -> bool:
        """Whether the person `grant` signed in is an admin of its team now; a member when no one can say."""
        source = self._sources.get(grant.platform)
        if source is None:
            log.warning(
                "dashboard: no %s connection in this process to check a role; shown as a member", grant.platform
            )
            return False
        try:
            return await source.is_admin(grant.team_id, grant.user_id)
        except Exception:
            log.warning("dashboard: %s could not say %s's role; shown as a member", grant.platform, grant.user_id,
                        exc_info=True)  # fmt: skip
            return False
