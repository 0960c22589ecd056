"""The exception tree. Every error a user can see carries a message they can act on.

Adapters turn a `UserFacingError` into their platform's way of saying it; anything else is a bug
that is logged with its traceback and shown to the user as a short generic apology.
"""

from __future__ import annotations


class TeambotError(Exception):
    """Base of every error raised on purpose by teambot."""


class ConfigError(TeambotError):
    """A setting is missing or invalid; the message names the variable and what is wrong."""


class PlatformUnreachable(TeambotError):
    """An operator's command could not connect to a platform; the message names it and what failed."""


class UserFacingError(TeambotError):
    """An error whose message is written for the person who sent the message."""

    # What an admin is told besides `message` (a setting to fix); None when it is the same for everyone.
    admin_detail: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadCommand(UserFacingError):
    """Unknown command or wrong arguments; the message includes a usage line."""


class MessageTooLong(UserFacingError):
    """The user's message alone does not fit the model's input budget."""


class BadAttachment(UserFacingError):
    """A file that cannot be used: empty, not audio, too long, too large, a web page instead of a file."""


class CannotPost(UserFacingError):
    """The platform will not let the bot post where it was asked (it is not a member there)."""


class CannotReplyPrivately(TeambotError):
    """The platform cannot deliver this answer to the asker alone (a DM refused, no private files).

    Raised by an adapter's Responder instead of posting where others could read it.
    """


class PrivateUnreachable(UserFacingError):
    """A private answer could not reach the asker alone; the message says how to get it privately."""


class NotAllowed(UserFacingError):
    """The user may not do this (for example an admin-only command)."""


class ModelError(UserFacingError):
    """A model call failed; subclasses say why."""

    # True when the request reached the provider and ran (a read timeout, a cut stream, a filtered
    # reply): the provider bills such a call, so it is charged what was received, never released.
    sent: bool = False

    def after_sending(self) -> ModelError:
        """This error, marked as one the provider may have billed."""
        self.sent = True
        return self


class RateLimited(ModelError):
    """The model provider is rate limiting us."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ContextTooLong(ModelError):
    """The provider refused the request because the prompt is longer than the model's context."""


class ContentRefused(ModelError):
    """The provider's content policy refused the request."""


class ModelAuthError(ModelError):
    """The API key is invalid or lacks permission for the model."""


class GatewayBudgetSpent(ModelError):
    """A gateway in front of the models (a LiteLLM proxy…) refuses: the budget it holds for this bot is spent.

    Not a rate limit: waiting seconds does not help, only the gateway's budget reset or an admin does.
    """


class ModelMisconfigured(ModelError):
    """The server refuses a parameter a setting makes us send (e.g. `dimensions` to a model without it)."""

    def __init__(self, message: str, *, parameter: str | None) -> None:
        super().__init__(message)
        self.parameter = parameter


class ModelTimeout(ModelError):
    """The provider did not answer within the configured timeout."""


class ModelUnavailable(ModelError):
    """The provider failed (5xx, connection reset, malformed stream)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        # True only when nothing can have been billed: the provider answered with a failure status,
        # or the request never reached it (connection refused, connect timeout).
        self.retryable = retryable


class ModelNotFound(ModelUnavailable):
    """The server has no such model (a setting names a model it does not serve).

    Users get a short apology; `admin_detail` names the model and the setting that names it.
    """

    def __init__(self, message: str, *, model: str, setting: str) -> None:
        super().__init__(message)
        self.model = model
        self.setting = setting


class ModelUnreachable(ModelUnavailable):
    """No connection to the model's server (refused, unknown host); `server` is the address tried."""

    def __init__(self, message: str, *, server: str, retryable: bool = False, setting: str = "OPENAI_BASE_URL") -> None:
        super().__init__(message, retryable=retryable)
        self.server = server
        self.admin_detail = f"Tried {server} ({setting}): is the model server running there?"


class NotSupported(UserFacingError):
    """Something this platform's adapter cannot do yet (reading its history, for one)."""
