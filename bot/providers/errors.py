"""The one place where an `openai` exception becomes one of ours, for OpenAI and OpenAI-compatible servers.

Self-hosted servers and gateways say the same things in other shapes: LiteLLM answers an unknown model
with 400 "Invalid model name passed in model=…", Ollama with 404 'model "x" not found', vLLM with 404
"The model `x` does not exist." (recorded in tests/fakes/openai_server.py). The rules below read the
status, the error's code and type, and the message, so each server's words lead to the same error.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from bot.errors import (
    ContentRefused,
    ContextTooLong,
    GatewayBudgetSpent,
    ModelAuthError,
    ModelError,
    ModelMisconfigured,
    ModelNotFound,
    ModelTimeout,
    ModelUnavailable,
    ModelUnreachable,
    RateLimited,
)
from bot.providers.registry import Provider

log = logging.getLogger(__name__)

FAULT_LOG_PERIOD = 3_600.0  # seconds between two log lines about one fault only an admin can fix

# OpenAI (404 model_not_found), LiteLLM (400), Ollama (404), vLLM (404) and other gateways' wording.
_NO_SUCH_MODEL = re.compile(
    r"invalid model name|model_not_found|no such model|unknown model"
    r"|model\b.{0,120}?\b(?:not found|does not exist|is not available|not supported by this server)",
    re.IGNORECASE | re.DOTALL,
)
# LiteLLM: 429 (older versions 400) type budget_exceeded, "Budget has been exceeded! Current cost: …",
# "ExceededBudget: User=… over budget", "ExceededTokenBudget: …".
_BUDGET = re.compile(r"budget has been exceeded|exceeded ?(?:token ?)?budget|over budget|budget exceeded", re.I)
# A parameter the model does not take: OpenAI ("does not support specifying dimensions", code
# unsupported_parameter), LiteLLM (UnsupportedParamsError "Setting dimensions is not supported"),
# vLLM ("does not support matryoshka representation, changing output dimensions…").
_UNSUPPORTED = re.compile(
    r"unsupportedparamserror|unsupported parameter|setting (?P<setting>\w+) is not supported"
    r"|does not support (?:specifying )?(?P<specifying>dimensions)|matryoshka",
    re.IGNORECASE,
)
_PARAMETER_NAMED = re.compile(
    r"setting (\w+) is not supported|unsupported parameter: '?(\w+)'?|does not support specifying (\w+)", re.I
)
# vLLM and LiteLLM send no code for these; the wording is the models' own.
_CONTEXT = re.compile(
    r"maximum context length|context.?length.?exceeded|contextwindowexceeded|prompt is too long", re.I
)


def translate_error(
    exc: BaseException, model: str, setting: str = "CHAT_MODEL", provider: Provider | None = None
) -> ModelError:
    """Turn an openai exception into a ModelError with a message for the user.

    `setting` is the setting that names `model` (CHAT_MODEL, EMBEDDING_MODEL…), for the admin's part;
    `provider` the one that ran it (None: the default), whose settings an admin is told of (never its key).
    """
    other = provider if provider is not None and not provider.is_default else None
    if isinstance(exc, openai.APITimeoutError):
        if _never_sent(exc):
            return ModelUnavailable(
                "Could not connect to the model's server in time. Please try again.", retryable=True
            )
        return ModelTimeout("The model took too long to answer and the request was stopped. Please try again.")
    if not isinstance(exc, openai.APIStatusError):
        if isinstance(exc, openai.APIConnectionError):
            return ModelUnreachable(
                "Could not reach the model's server. Please try again in a moment.",
                server=_server(exc),
                retryable=_never_sent(exc),
                setting=other.url_setting if other else "OPENAI_BASE_URL",
            )
        return ModelUnavailable("Could not reach the model's server. Please try again in a moment.")
    message, code, kind = _api_message(exc), _code(exc), _type(exc)
    if code == "insufficient_quota":
        account = f"The account of provider {other.name!r}" if other else "The OpenAI account"
        return ModelAuthError(f"{account} behind this bot is out of credit; ask an admin to top it up.")
    if exc.status_code in (400, 429) and (kind == "budget_exceeded" or _BUDGET.search(message)):
        return _gateway_budget(message, other.url_setting if other else "OPENAI_BASE_URL")
    if isinstance(exc, openai.RateLimitError):
        retry_after = _retry_after(exc.response)
        when = f"in {retry_after:.0f} s" if retry_after is not None else "in a minute"
        return RateLimited(f"The model is rate limited right now; try again {when}.", retry_after)
    if isinstance(exc, openai.AuthenticationError):
        if other:
            return ModelAuthError(
                f"The bot's API key for provider {other.name!r} was refused; ask an admin to check {other.key_setting}."
            )
        return ModelAuthError("The bot's OpenAI API key was refused; ask an admin to check OPENAI_API_KEY.")
    if isinstance(exc, openai.PermissionDeniedError):
        key = f"key for provider {other.name!r} ({other.key_setting})" if other else "key"
        return ModelAuthError(f"The bot's API {key} may not use model {model!r}; ask an admin to check its access.")
    if exc.status_code in (400, 404) and (code == "model_not_found" or _NO_SUCH_MODEL.search(message)):
        return _no_such_model(model, setting, other)
    if isinstance(exc, openai.NotFoundError):
        error = _no_such_model(model, setting, other)
        error.admin_detail = (
            f"The model server answered 404 for model {model!r} ({setting}): either it has no such model, "
            f"or {other.url_setting if other else 'OPENAI_BASE_URL'} does not point at its OpenAI-compatible API "
            "(it usually ends in /v1)."
        )
        return error
    if isinstance(exc, openai.BadRequestError):
        if code == "context_length_exceeded" or _CONTEXT.search(message):
            return ContextTooLong(
                "This conversation is longer than the model can read. Use /reset to start a fresh one, "
                "or ask an admin to lower MAX_CONTEXT_TOKENS to the model's real context size."
            )
        if code in ("content_policy_violation", "content_filter"):
            return ContentRefused("The model's content policy refused this request. Try rephrasing it.")
        if code in ("unsupported_parameter", "unsupported_value") or _UNSUPPORTED.search(message):
            return _unsupported(model, message, exc.param)
        return ModelError(f"The model refused the request: {message}")
    status = exc.status_code
    return ModelUnavailable(f"The model's server failed (HTTP {status}). Please try again in a moment.", retryable=True)


def needs_an_admin(error: ModelError) -> bool:
    """Faults that repeat on every call until an admin changes a setting or a budget."""
    return isinstance(error, ModelNotFound | ModelMisconfigured | GatewayBudgetSpent | ModelAuthError)


class FaultLog:
    """Logs faults that only an admin can fix once per period, not once per message.

    Lines in between are counted and the count is told with the next line.
    """

    def __init__(self, period: float = FAULT_LOG_PERIOD, clock: Callable[[], float] = time.monotonic) -> None:
        self._period = period
        self._clock = clock
        self._last: dict[str, float] = {}
        self._quiet: Counter[str] = Counter()

    def report(self, error: ModelError) -> None:
        """Log `error` at ERROR if it needs an admin and was not logged within the period."""
        if not needs_an_admin(error):
            return
        text = error.admin_detail or error.message
        now, last = self._clock(), self._last.get(text)
        if last is not None and now - last < self._period:
            self._quiet[text] += 1
            return
        self._last[text] = now
        quiet = self._quiet.pop(text, 0)
        log.error("%s%s", text, f" ({quiet} more time(s) since the last report)" if quiet else "")

    @contextmanager
    def translating(self, model: str, setting: str) -> Iterator[None]:
        """Inside, an openai error leaves as ours (naming `setting`), reported here first."""
        try:
            yield
        except openai.APIError as exc:
            error = translate_error(exc, model, setting)
            self.report(error)
            raise error from exc


def _no_such_model(model: str, setting: str, provider: Provider | None = None) -> ModelNotFound:
    error = ModelNotFound(
        "Sorry, I can't do that right now: the bot's model settings need an admin's attention.",
        model=model,
        setting=setting,
    )
    if provider is None:
        error.admin_detail = (
            f"The model server has no model {model!r} (named by {setting}). "
            f"Set {setting} to a model it serves (its /v1/models lists them)."
        )
    else:
        error.admin_detail = (
            f"The model server of provider {provider.name!r} has no model {model.partition('/')[2]!r} "
            f"({model!r}, named by {setting}). Set {setting} to a model it serves (its /v1/models lists them), "
            f"or check {provider.url_setting}."
        )
    return error


def _gateway_budget(message: str, url_setting: str) -> GatewayBudgetSpent:
    error = GatewayBudgetSpent(
        "The model gateway in front of this bot has spent the budget it allows the bot; answers resume "
        "when that budget resets or an admin raises it."
    )
    error.admin_detail = f"The gateway at {url_setting} refuses with its budget spent: {message[:300]}"
    return error


def _unsupported(model: str, message: str, param: str | None) -> ModelMisconfigured:
    named = _PARAMETER_NAMED.search(message)
    parameter = param if param and param != "None" else None
    if parameter is None and named is not None:
        parameter = next(group for group in named.groups() if group)
    if parameter is None and "matryoshka" in message.lower():
        parameter = "dimensions"
    error = ModelMisconfigured(
        "Sorry, I can't do that right now: the bot's model settings need an admin's attention.", parameter=parameter
    )
    what = f"the parameter {parameter!r}" if parameter else "a parameter the bot sends"
    error.admin_detail = f"Model {model!r} does not accept {what}: {message[:300]}"
    return error


def _never_sent(exc: BaseException) -> bool:
    """Whether the failure happened before the request reached the server (nothing can have been billed):
    connection refused or reset while connecting, a connect timeout (a full listen backlog), no free
    connection in the pool."""
    seen = exc.__cause__ or exc.__context__
    for _ in range(6):  # the chain is short: openai's error from httpx2's from the socket's
        if seen is None:
            return False
        if isinstance(seen, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout | ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _code(exc: openai.APIStatusError) -> str | None:
    code = getattr(exc, "code", None)
    return str(code) if code is not None else None


def _type(exc: openai.APIStatusError) -> str | None:
    kind = getattr(exc, "type", None)
    return str(kind) if kind is not None else None


def _api_message(exc: openai.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):  # some servers: {"error": "model 'x' not found"}
            return error
        if isinstance(body.get("detail"), str):  # FastAPI-style servers
            return str(body["detail"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.__class__.__name__


def _retry_after(response: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds only; an HTTP date is ignored)."""
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def _server(exc: openai.APIConnectionError) -> str:
    """Where the failed request went: scheme, host, port and path, never a user:password part or query."""
    url = urlsplit(str(getattr(getattr(exc, "request", None), "url", "")))
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.hostname}{port}{url.path}" if url.scheme and url.hostname else "the model's server"
