"""Dashboard sign-ins for both databases: one-time links and sessions, shared by every worker.

Only SHA-256 digests of the secrets are stored. Taking a link is one DELETE … RETURNING, so across
processes a link signs in once: whichever statement deletes the row gets the grant.
"""

from __future__ import annotations

from datetime import UTC, datetime

from storage.signins import SignInGrant, WebSession
from storage.sql.connection import Database, Row

_GRANT = "platform, team_id, user_id, display_name, is_admin"
ADD_LINK = f"INSERT INTO dashboard_links (digest, {_GRANT}, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
LINK = f"SELECT {_GRANT} FROM dashboard_links WHERE digest = $1 AND expires_at > $2"
TAKE_LINK = f"DELETE FROM dashboard_links WHERE digest = $1 RETURNING {_GRANT}, expires_at"
ADD_SESSION = (
    f"INSERT INTO dashboard_sessions (digest, {_GRANT}, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
SESSION = f"SELECT {_GRANT}, created_at, expires_at FROM dashboard_sessions WHERE digest = $1 AND expires_at > $2"
END_SESSION = "DELETE FROM dashboard_sessions WHERE digest = $1"
# One team's and/or one person's ($1 team, $2 user; '' = any): an operator's list, their ending, and /forget.
_WHOSE = "($1 = '' OR team_id = $1) AND ($2 = '' OR user_id = $2)"
SESSIONS = (
    f"SELECT {_GRANT}, created_at, expires_at FROM dashboard_sessions WHERE {_WHOSE} AND expires_at > $3"
    " ORDER BY created_at, user_id"
)
END_SIGNINS = (
    f"DELETE FROM dashboard_sessions WHERE {_WHOSE} RETURNING 1",
    f"DELETE FROM dashboard_links WHERE {_WHOSE} RETURNING 1",
)
FORGET_LINKS = "DELETE FROM dashboard_links WHERE expires_at <= $1"
FORGET_SESSIONS = "DELETE FROM dashboard_sessions WHERE expires_at <= $1"


def _at(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so stored times compare as text in both databases."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _grant(row: Row) -> SignInGrant:
    return SignInGrant(str(row[0]), str(row[1]), str(row[2]), str(row[3]), bool(row[4]))


class SQLSignIns:
    """The SignIns protocol on the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_link(self, digest: str, grant: SignInGrant, expires_at: datetime) -> None:
        await self._db.execute(ADD_LINK, digest, *_values(grant), _at(expires_at))

    async def link(self, digest: str, now: datetime) -> SignInGrant | None:
        row = await self._db.fetchrow(LINK, digest, _at(now))
        return None if row is None else _grant(row)

    async def take_link(self, digest: str, now: datetime) -> SignInGrant | None:
        row = await self._db.fetchrow(TAKE_LINK, digest)
        if row is None or str(row[5]) <= _at(now):
            return None
        return _grant(row)

    async def add_session(self, digest: str, session: WebSession) -> None:
        await self._db.execute(
            ADD_SESSION, digest, *_values(session.grant), _at(session.created_at), _at(session.expires_at)
        )

    async def session(self, digest: str, now: datetime) -> WebSession | None:
        row = await self._db.fetchrow(SESSION, digest, _at(now))
        return None if row is None else _session(row)

    async def end_session(self, digest: str) -> None:
        await self._db.execute(END_SESSION, digest)

    async def sessions(self, now: datetime, team_id: str = "", user_id: str = "") -> list[WebSession]:
        return [_session(row) for row in await self._db.fetch(SESSIONS, team_id, user_id, _at(now))]

    async def end_sessions(self, team_id: str = "", user_id: str = "") -> tuple[int, int]:
        async with self._db.transaction() as tx:
            sessions, links = [len(await tx.fetch(sql, team_id, user_id)) for sql in END_SIGNINS]
        return sessions, links

    async def forget_expired(self, now: datetime) -> int:
        async with self._db.transaction() as tx:
            return await tx.execute(FORGET_LINKS, _at(now)) + await tx.execute(FORGET_SESSIONS, _at(now))


def _session(row: Row) -> WebSession:
    return WebSession(_grant(row), datetime.fromisoformat(str(row[5])), datetime.fromisoformat(str(row[6])))


def _values(grant: SignInGrant) -> tuple[str, str, str, str, int]:
    return grant.platform, grant.team_id, grant.user_id, grant.display_name, int(grant.is_admin)
