"""Signing in to the dashboard from the chat: a one-time link opens a session scoped to a team and a role.

No passwords and no accounts: the platform already knows who asked and whether they are an admin.
A link works once, for DASHBOARD_LINK_MINUTES; the session it opens lasts DASHBOARD_SESSION_HOURS.
Secrets go out once (in the link, in the cookie) and only their digests are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import replace
from datetime import timedelta

from bot.clock import Clock
from bot.dashboard.roles import Roles
from bot.messages import IncomingMessage
from bot.settings import Settings
from storage.signins import SignInGrant, SignIns, WebSession

LOGIN_PATH = "/dashboard/login"


def digest(secret: str) -> str:
    """What is stored for a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def dashboard_base(settings: Settings) -> str:
    """Where people reach the dashboard: PUBLIC_URL (behind a proxy), else this host's PORT."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://localhost:{settings.port}"


def slack_http_mode(settings: Settings) -> bool:
    """Whether Slack runs in HTTP mode (its server on PORT serves the dashboard too)."""
    return settings.slack_bot_token is not None and settings.slack_app_token is None


def dashboard_served(settings: Settings) -> bool:
    """Whether this process serves the dashboard: Slack's HTTP mode, or PORT / PUBLIC_URL set explicitly."""
    return slack_http_mode(settings) or settings.public_url is not None or "port" in settings.model_fields_set


class SignIn:
    """Issues one-time links and turns them into sessions; checks sessions and their form tokens."""

    def __init__(self, store: SignIns, settings: Settings, clock: Clock, roles: Roles) -> None:
        self._store = store
        self._roles = roles
        self._clock = clock
        self._link_life = timedelta(minutes=settings.dashboard_link_minutes)
        self._session_life = timedelta(hours=settings.dashboard_session_hours)
        self._base = dashboard_base(settings)

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry Secure when people reach the dashboard over https."""
        return self._base.startswith("https://")

    @property
    def link_minutes(self) -> int:
        """How long a link works."""
        return int(self._link_life.total_seconds() // 60)

    async def issue_link(self, message: IncomingMessage) -> str:
        """A one-time sign-in link for the author of `message`, in their team and role."""
        token = secrets.token_urlsafe(32)
        author = message.author
        grant = SignInGrant(message.platform, message.team_id, author.id, author.display_name, author.is_admin)
        now = self._clock()
        await self._store.forget_expired(now)
        await self._store.add_link(digest(token), grant, now + self._link_life)
        return f"{self._base}{LOGIN_PATH}?token={token}"

    async def grant(self, token: str) -> SignInGrant | None:
        """Who a link's token would sign in, without using it (the page that asks to continue)."""
        if not token or len(token) > 200:
            return None
        return await self._store.link(digest(token), self._clock())

    async def redeem(self, token: str) -> tuple[str, WebSession] | None:
        """Use a link's token: a new session's secret (for the cookie) and the session, or None."""
        if not token or len(token) > 200:
            return None
        now = self._clock()
        grant = await self._store.take_link(digest(token), now)
        if grant is None:
            return None
        secret = secrets.token_urlsafe(32)
        session = WebSession(grant, now, now + self._session_life)
        await self._store.add_session(digest(secret), session)
        return secret, session

    async def session(self, secret: str | None) -> WebSession | None:
        """The session a cookie opens, if it is one of ours and still valid, with the person's role now (the
        platform's answer, not the one stored when they signed in)."""
        if not secret or len(secret) > 200:
            return None
        session = await self._store.session(digest(secret), self._clock())
        if session is None:
            return None
        now_admin = await self._roles.is_admin(session.grant)
        return replace(session, grant=replace(session.grant, is_admin=now_admin))

    async def sign_out(self, secret: str) -> None:
        """End the session behind a cookie."""
        await self._store.end_session(digest(secret))

    @staticmethod
    def form_token(secret: str) -> str:
        """The CSRF token of a session: derived from its cookie secret, which another site cannot read."""
        return hmac.new(secret.encode(), b"dashboard-form", hashlib.sha256).hexdigest()

    @classmethod
    def form_token_ok(cls, secret: str, token: str) -> bool:
        """Whether a posted form carries the session's token."""
        return hmac.compare_digest(cls.form_token(secret), token)
