"""Starting on Slack: the tokens checked once with one clear line each, Slack unreachable retried
with backoff (one WARNING a try) and stoppable at any moment, no warnings on a normal start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_RETRY = 1.0  # seconds before the second try; doubled each time up to MAX_RETRY
MAX_RETRY = 60.0
UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError)
# Socket Mode's own logger: its reconnection errors become one WARNING line each (see QuietRetries).
SOCKET_LOG = logging.getLogger("adapters.slack.socket_mode")

BOT_TOKEN_REFUSED = (
    "Slack refused SLACK_BOT_TOKEN ({error}). Copy the Bot User OAuth Token (xoxb-…) again from your app's "
    "OAuth & Permissions page (reinstall the app if it was revoked)."
)
APP_TOKEN_REFUSED = (
    "Slack refused SLACK_APP_TOKEN ({error}). It must be an app-level token (xapp-…) with the "
    "connections:write scope: your app's Basic Information → App-Level Tokens."
)
APP_TOKEN_IS_BOT_TOKEN = (
    "SLACK_APP_TOKEN holds a bot token (xoxb-…). Socket Mode needs an app-level token (xapp-…) with the "
    "connections:write scope: your app's Basic Information → App-Level Tokens."
)


class _DropTokenWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def quiet_client_token_warning() -> None:
    """Bolt reads SLACK_BOT_TOKEN from the environment (the name our setting shares) and, as we also
    give it a client, warns on every start that the token is unused. That is the intended set-up."""
    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _DropTokenWarning) for f in logger.filters):
        logger.addFilter(_DropTokenWarning())


class QuietRetries(logging.Filter):
    """slack-sdk logs every failed reconnection with a traceback: an unreachable Slack becomes one
    WARNING line a try (other errors keep their traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and isinstance(exc, UNREACHABLE):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "Slack Socket Mode: %s (%s); retrying", (type(exc).__name__, exc)
            record.exc_info = record.exc_text = None
        return True


def socket_mode_logger() -> logging.Logger:
    """The logger to give Socket Mode: its retries quiet (QuietRetries)."""
    if not any(isinstance(f, QuietRetries) for f in SOCKET_LOG.filters):
        SOCKET_LOG.addFilter(QuietRetries())
    return SOCKET_LOG


async def until_answered(call: Callable[[], Awaitable[T]], what: str, stop: asyncio.Event) -> T | None:
    """`call()`, tried again with backoff while Slack is unreachable; None when `stop` is set first.

    A refusal (SlackApiError) is for the caller to explain: it is raised at once.
    """
    delay = FIRST_RETRY
    while not stop.is_set():
        try:
            return await call()
        except UNREACHABLE as exc:
            log.warning("Slack unreachable for %s (%s); retrying in %.0f s", what, type(exc).__name__, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            delay = min(delay * 2, MAX_RETRY)
    return None


async def check_bot_token(client: AsyncWebClient, stop: asyncio.Event) -> bool:
    """auth.test: False when stopped first; ConfigError naming SLACK_BOT_TOKEN when Slack refuses it."""
    try:
        answer = await until_answered(client.auth_test, "auth.test", stop)
    except SlackApiError as exc:
        raise ConfigError(BOT_TOKEN_REFUSED.format(error=exc.response.get("error"))) from None
    return answer is not None


async def open_socket_url(client: AsyncWebClient, app_token: str, stop: asyncio.Event) -> str | None:
    """apps.connections.open with the app token: the websocket URL, None when stopped first.

    Slack answers `invalid_auth` to a wrong token and `not_allowed_token_type` to a bot token.
    """
    if app_token.startswith(("xoxb-", "xoxp-")):
        raise ConfigError(APP_TOKEN_IS_BOT_TOKEN)

    async def call() -> Any:
        return await client.apps_connections_open(app_token=app_token)

    try:
        answer = await until_answered(call, "apps.connections.open", stop)
    except SlackApiError as exc:
        raise ConfigError(APP_TOKEN_REFUSED.format(error=exc.response.get("error"))) from None
    return None if answer is None else str(answer["url"])
