"""The dashboard's routes on an aiohttp application, and serving them on PORT when no Slack HTTP mode does.

Sign-in: GET /dashboard/login?token=… (the one-time link from /dashboard in the chat) shows who it signs
in and a Continue button; its POST uses the link, sets an HttpOnly, SameSite=Lax cookie (Secure behind
https) and redirects, so the token leaves the address bar. Opening the link does not use it: chat apps'
link previews fetch it before the person clicks (Discord's embeds, Slack's unfurls).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from aiohttp import web

from adapters.common.http_server import serve_until
from adapters.web import budget_page, prompt_pages, spend_page
from adapters.web.layout import SECURITY_HEADERS, STYLE, e, notice, page
from adapters.web.visit import (
    COOKIE_PATH,
    HOW_TO_SIGN_IN,
    SESSION_COOKIE,
    SIGNED_OUT_PATH,
    Visit,
    html,
    posted_form,
    signed_in,
)
from bot.chat.engine import Engine
from bot.dashboard.signin import LOGIN_PATH, dashboard_base
from bot.settings import Settings

log = logging.getLogger(__name__)


class DashboardSite:
    """The dashboard's handlers for one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._public_host = urlsplit(dashboard_base(engine.settings)).netloc

    def routes(self) -> list[web.RouteDef]:
        """Every route of the dashboard, all under /dashboard."""
        guard = self._engine
        return [
            web.get(LOGIN_PATH, self._confirm),
            web.post(LOGIN_PATH, self._login),
            web.get(SIGNED_OUT_PATH, self._signed_out),
            web.get("/dashboard/static/style.css", self._style),
            web.post("/dashboard/logout", signed_in(guard, self._logout)),
            web.get("/dashboard", signed_in(guard, spend_page.spend)),
            web.get("/dashboard/", signed_in(guard, spend_page.spend)),
            web.get("/dashboard/spend.csv", signed_in(guard, spend_page.spend_csv, api=True)),
            web.get("/dashboard/budgets", signed_in(guard, budget_page.budgets)),
            web.post("/dashboard/budgets", signed_in(guard, budget_page.change)),
            web.get("/dashboard/prompts", signed_in(guard, prompt_pages.prompts)),
            web.get("/dashboard/prompts/{name}", signed_in(guard, prompt_pages.prompt)),
            web.get("/dashboard/prompts/{name}/diff", signed_in(guard, prompt_pages.diff)),
            web.get("/dashboard/prompts/{name}/compare", signed_in(guard, prompt_pages.compare)),
        ]

    async def _confirm(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")
        grant = await self._engine.signin.grant(token)
        if grant is None:
            return _expired()
        role = "an admin" if grant.is_admin else "a member"
        body = (
            f"<p>Sign in as <strong>{e(grant.display_name)}</strong>, {role} of {e(grant.platform)} team "
            f"{e(grant.team_id)}.</p>"
            f'<form method="post" action="{LOGIN_PATH}"><input type="hidden" name="token" value="{e(token)}">'
            '<button type="submit">Continue to the dashboard</button></form>'
            '<p class="muted">The link works once. If you did not ask for it with /dashboard, close this page.</p>'
        )
        return html(page("Sign in to the dashboard", body))

    async def _login(self, request: web.Request) -> web.StreamResponse:
        signin = self._engine.signin
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc not in (request.host, self._public_host):
            # Another site cannot sign a visitor in to a session of its choosing (login CSRF); "null" is refused too.
            return html(page("Refused", notice("This sign-in did not come from this site.", "error")), 403)
        redeemed = await signin.redeem((await posted_form(request, self._engine)).get("token", ""))
        if redeemed is None:
            return _expired()
        secret, session = redeemed
        log.info("dashboard: %s signed in to team %s", session.grant.user_id, session.grant.team_id)
        response = web.Response(status=303, headers={"Location": "/dashboard", **SECURITY_HEADERS})
        response.set_cookie(
            SESSION_COOKIE, secret, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=signin.secure_cookies,
            max_age=int((session.expires_at - session.created_at).total_seconds()),
        )  # fmt: skip
        return response

    async def _logout(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        await self._engine.signin.sign_out(visit.secret)
        response = web.Response(status=303, headers={"Location": SIGNED_OUT_PATH, **SECURITY_HEADERS})
        response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    async def _signed_out(self, request: web.Request) -> web.StreamResponse:
        return html(page("Sign in from the chat", f"<p>You are not signed in. {HOW_TO_SIGN_IN}</p>"))

    async def _style(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=STYLE, content_type="text/css", headers={"X-Content-Type-Options": "nosniff"})


def _expired() -> web.Response:
    text = notice(f"This sign-in link has expired or was already used. {HOW_TO_SIGN_IN}", "error")
    return html(page("Link expired or used", text), 403)


def add_dashboard(app: web.Application, engine: Engine) -> web.Application:
    """Add the dashboard's routes to an application (Slack HTTP mode's, or our own)."""
    app.router.add_routes(DashboardSite(engine).routes())
    return app


async def serve_dashboard(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Serve the dashboard alone on PORT until `stop` (Discord-only and console runs)."""
    app = add_dashboard(web.Application(), engine)
    await serve_until(app, settings.host, settings.port, stop, serving="dashboard (/dashboard)")
