"""Signed-in requests: the session behind the cookie, the form token, and the answers pages give."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from adapters.common.http_server import read_body
from adapters.web.layout import SECURITY_HEADERS, notice, page
from bot.chat.engine import Engine
from bot.dashboard.signin import SignIn
from bot.errors import NotAllowed, UserFacingError
from storage import StoreFailed
from storage.signins import WebSession

log = logging.getLogger(__name__)

SESSION_COOKIE = "teambot_session"
COOKIE_PATH = "/dashboard"
SIGNED_OUT_PATH = "/dashboard/signed-out"
HOW_TO_SIGN_IN = (
    "Type /dashboard in the chat (Slack, Discord or the console): the bot answers you privately with a "
    "link that signs you in once."
)


@dataclass(frozen=True)
class Visit:
    """One signed-in request: the engine, the session, and the cookie's secret (for the form token)."""

    engine: Engine
    session: WebSession
    secret: str

    @property
    def csrf(self) -> str:
        """The token every form of this session carries."""
        return SignIn.form_token(self.secret)

    def page(self, title: str, body: str, *, current: str = "", status: int = 200) -> web.Response:
        """A page of the dashboard, with its header."""
        return html(page(title, body, self.session, csrf=self.csrf, current=current), status)


PageHandler = Callable[[web.Request, Visit], Awaitable[web.StreamResponse]]


FORM_TYPES = ("application/x-www-form-urlencoded", "")  # what our pages' forms send (no page posts multipart)


async def posted_form(request: web.Request, engine: Engine) -> dict[str, str]:
    """The posted form, read within REQUEST_BODY_SECONDS (else 408); a body that is not a form our pages
    send (multipart, bytes that are not text in their charset) is a 400, not a traceback."""
    await read_body(request, engine.settings.request_body_seconds)
    try:
        if request.content_type not in FORM_TYPES:
            raise ValueError(request.content_type)
        form = await request.post()
    except (ValueError, LookupError):  # UnicodeDecodeError is a ValueError; LookupError: an unknown charset
        raise web.HTTPBadRequest(
            text="This was not a form from the dashboard's pages; nothing was changed.\n", headers=SECURITY_HEADERS
        ) from None
    return {name: value for name, value in form.items() if isinstance(value, str)}


def html(text: str, status: int = 200) -> web.Response:
    """An HTML answer with the dashboard's security headers."""
    return web.Response(text=text, status=status, content_type="text/html", headers=SECURITY_HEADERS)


def signed_in(
    engine: Engine, handler: PageHandler, *, api: bool = False
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Run `handler` only for a valid session; a POST also needs the session's form token.

    Without a session a page redirects to how to sign in, and a download (`api`) or a POST answers 401.
    """

    async def run(request: web.Request) -> web.StreamResponse:
        secret = request.cookies.get(SESSION_COOKIE, "")
        try:
            session = await engine.signin.session(secret)
        except StoreFailed:
            log.exception("dashboard: the session could not be read")
            return html(page("Unavailable", notice("The bot's database is busy or failing; try again.", "error")), 503)
        if session is None:
            if api or request.method != "GET":
                return web.Response(text=f"Not signed in. {HOW_TO_SIGN_IN}\n", status=401, headers=SECURITY_HEADERS)
            return web.Response(status=303, headers={"Location": SIGNED_OUT_PATH, **SECURITY_HEADERS})
        visit = Visit(engine, session, secret)
        if request.method == "POST":
            form = await posted_form(request, engine)
            if not SignIn.form_token_ok(secret, form.get("csrf", "")):
                log.warning("dashboard: a form without its session's token was refused (%s)", request.path)
                return visit.page(
                    "Refused", notice("This form did not come from your dashboard page; nothing was changed.", "error"),
                    status=403,
                )  # fmt: skip
        try:
            return await handler(request, visit)
        except NotAllowed as exc:
            return visit.page("Not allowed", notice(exc.message, "error"), status=403)
        except UserFacingError as exc:
            return visit.page("Cannot show that", notice(exc.message, "error"), status=400)
        except StoreFailed:
            log.exception("dashboard: storage failed on %s", request.path)
            return visit.page(
                "Unavailable", notice("The bot's database is busy or failing; try again.", "error"), status=503
            )

    return run
