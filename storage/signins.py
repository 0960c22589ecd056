"""Dashboard sign-in records: one-time links and the sessions they open, behind the `SignIns` protocol.

Only digests of the secrets are kept (a copied table opens nothing). The implementation, shared by
every worker on the database, is storage/sql/signins.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class SignInGrant:
    """Who a link or a session is for: one person of one team, with the role they had when they asked (a record
    only: the dashboard asks the platform for their role on every request, see bot/dashboard/roles.py)."""

    platform: str
    team_id: str
    user_id: str
    display_name: str
    is_admin: bool


@dataclass(frozen=True)
class WebSession:
    """An open dashboard session."""

    grant: SignInGrant
    created_at: datetime
    expires_at: datetime


class SignIns(Protocol):
    """One-time links and sessions, keyed by the SHA-256 digest of their secret."""

    async def add_link(self, digest: str, grant: SignInGrant, expires_at: datetime) -> None:
        """Store a one-time link."""

    async def link(self, digest: str, now: datetime) -> SignInGrant | None:
        """A link's grant if it exists and has not expired, leaving it usable."""

    async def take_link(self, digest: str, now: datetime) -> SignInGrant | None:
        """Use a link: its grant if it exists and has not expired, and it is gone either way (single use)."""

    async def add_session(self, digest: str, session: WebSession) -> None:
        """Store an opened session."""

    async def session(self, digest: str, now: datetime) -> WebSession | None:
        """The session if it exists and has not expired."""

    async def end_session(self, digest: str) -> None:
        """Sign out."""

    async def sessions(self, now: datetime, team_id: str = "", user_id: str = "") -> list[WebSession]:
        """The open sessions, oldest first; of one team and/or one person when given."""

    async def end_sessions(self, team_id: str = "", user_id: str = "") -> tuple[int, int]:
        """End the sessions and void the unused links of one team and/or one person (neither: everyone's);
        returns how many sessions and links."""

    async def forget_expired(self, now: datetime) -> int:
        """Drop expired links and sessions; returns how many."""
