"""Dashboard sign-in records: one-time links and the sessions they open, behind the `SignIns` protocol.

Only digests of the secrets are kept (a copied table opens nothing). The SQL implementation, shared
by several workers, belongs in the shared SQL layer; `InProcessSignIns` serves one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class SignInGrant:
    """Who a link or a session is for: one person of one team, with the role they had when they asked."""

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

    async def forget_expired(self, now: datetime) -> int:
        """Drop expired links and sessions; returns how many."""


class InProcessSignIns:
    """SignIns in this process's memory: right for one process (console, one Discord or Slack worker).

    Each method runs without an await inside, so on one event loop a link is taken at most once.
    """

    def __init__(self) -> None:
        self._links: dict[str, tuple[SignInGrant, datetime]] = {}
        self._sessions: dict[str, WebSession] = {}

    async def add_link(self, digest: str, grant: SignInGrant, expires_at: datetime) -> None:
        self._links[digest] = (grant, expires_at)

    async def link(self, digest: str, now: datetime) -> SignInGrant | None:
        found = self._links.get(digest)
        return found[0] if found is not None and found[1] > now else None

    async def take_link(self, digest: str, now: datetime) -> SignInGrant | None:
        found = self._links.pop(digest, None)
        if found is None or found[1] <= now:
            return None
        return found[0]

    async def add_session(self, digest: str, session: WebSession) -> None:
        self._sessions[digest] = session

    async def session(self, digest: str, now: datetime) -> WebSession | None:
        found = self._sessions.get(digest)
        return found if found is not None and found.expires_at > now else None

    async def end_session(self, digest: str) -> None:
        self._sessions.pop(digest, None)

    async def forget_expired(self, now: datetime) -> int:
        links = [d for d, (_, expires) in self._links.items() if expires <= now]
        sessions = [d for d, s in self._sessions.items() if s.expires_at <= now]
        for d in links:
            del self._links[d]
        for d in sessions:
            del self._sessions[d]
        return len(links) + len(sessions)
