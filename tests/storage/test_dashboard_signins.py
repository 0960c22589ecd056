"""Dashboard sign-ins in the database: several workers share links and sessions (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.signins import SignInGrant, WebSession
from tests.harness.stores import fresh_database, opened

NOW = datetime(2026, 12, 14, 12, tzinfo=UTC)
GRANT = SignInGrant("slack", "T1", "U1", "Ann", True)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_two_workers_share_links_and_sessions_and_a_link_signs_in_once(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url, opened(url) as one, opened(url) as two:
        await one.signins.add_link("d-link", GRANT, NOW + timedelta(minutes=10))
        assert await two.signins.link("d-link", NOW) == GRANT  # looking does not use it
        taken = await asyncio.gather(*(s.signins.take_link("d-link", NOW) for s in (one, two, one, two)))
        assert taken.count(GRANT) == 1 and taken.count(None) == 3
        assert await one.signins.link("d-link", NOW) is None
        session = WebSession(GRANT, NOW, NOW + timedelta(hours=12))
        await one.signins.add_session("d-session", session)
        assert await two.signins.session("d-session", NOW + timedelta(hours=11)) == session
        assert await two.signins.session("d-session", NOW + timedelta(hours=12)) is None
        await two.signins.end_session("d-session")
        assert await one.signins.session("d-session", NOW) is None


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_expired_links_open_nothing_and_are_forgotten(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url, opened(url) as store:
        member = SignInGrant("discord", "G1", "U2", "Bo", False)
        await store.signins.add_link("old", member, NOW + timedelta(minutes=10))
        await store.signins.add_link("new", member, NOW + timedelta(minutes=30))
        await store.signins.add_session("gone", WebSession(member, NOW, NOW + timedelta(minutes=5)))
        assert await store.signins.link("old", NOW + timedelta(minutes=10)) is None
        assert await store.signins.forget_expired(NOW + timedelta(minutes=10)) == 2
        assert await store.signins.take_link("old", NOW) is None  # forgotten
        assert await store.signins.take_link("new", NOW + timedelta(minutes=29, seconds=59)) == member


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_forget_ends_the_persons_sessions_and_links_in_that_team_and_removes_their_rows(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url, opened(url) as store:
        later = NOW + timedelta(hours=12)
        mine = SignInGrant("slack", "T1", "U1", "Ann", True)
        others = [SignInGrant("slack", "T1", "U2", "Bo", False), SignInGrant("slack", "T2", "U1", "Ann", False)]
        await store.signins.add_link("my-link", mine, later)
        await store.signins.add_session("my-session", WebSession(mine, NOW, later))
        for n, grant in enumerate(others):
            await store.signins.add_link(f"link-{n}", grant, later)
            await store.signins.add_session(f"session-{n}", WebSession(grant, NOW, later))
        counts = await store.forget_user("T1", "U1", "forgotten-x")
        assert counts["dashboard sign-ins"] == 2
        assert await store.signins.session("my-session", NOW) is None
        assert await store.signins.link("my-link", NOW) is None
        assert await store.signins.session("session-0", NOW) is not None  # someone else's, and another team's
        assert await store.signins.session("session-1", NOW) is not None
        # The rows are gone, not hidden: only the other people's four are left to expire.
        assert await store.signins.forget_expired(later) == 4


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_an_operator_lists_and_ends_one_persons_one_teams_or_every_session(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url, opened(url) as store:
        later = NOW + timedelta(hours=1)
        people = [SignInGrant("slack", "T1", "U1", "Ann", True), SignInGrant("slack", "T1", "U2", "Bo", False),
                  SignInGrant("discord", "G1", "U1", "Ann", False)]  # fmt: skip
        for n, grant in enumerate(people):
            await store.signins.add_session(f"s{n}", WebSession(grant, NOW + timedelta(seconds=n), later))
        await store.signins.add_session("old", WebSession(people[1], NOW - timedelta(hours=2), NOW))
        assert [s.grant for s in await store.signins.sessions(NOW)] == people  # open ones, oldest first
        assert [s.grant for s in await store.signins.sessions(NOW, user_id="U1")] == [people[0], people[2]]
        assert [s.grant for s in await store.signins.sessions(NOW, team_id="T1")] == people[:2]
        assert await store.signins.end_sessions("T1", "U1") == (1, 0)
        assert await store.signins.end_sessions(team_id="T1") == (2, 0)  # Bo's expired one goes too
        assert await store.signins.end_sessions() == (1, 0)
        assert await store.signins.sessions(NOW) == []
