"""The exception tree. Every error a user can see carries a message they can act on.

Adapters turn a `UserFacingError` into their platform's way of saying it; anything else is a bug
that is logged with its traceback and shown to the user as a short generic apology.
"""

from __future__ import annotations


class TeambotError(Exception):
    """Base of every error raised on purpose by teambot."""


class ConfigError(TeambotError):
    """A setting is missing or invalid; the message names the variable and what is wrong."""


class UserFacingError(TeambotError):
    """An error whose message is written for the person who sent the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadCommand(UserFacingError):
    """Unknown command or wrong arguments; the message includes a usage line."""


class MessageTooLong(UserFacingError):
    """The user's message alone does not fit the model's input budget."""


class BadAttachment(UserFacingError):
    """A file that cannot be used: empty, not audio, too long, too large, a web page instead of a file."""


class NotAllowed(UserFacingError):
    """The user may not do this (for example an admin-only command)."""


class ModelError(UserFacingError):
    """A model call failed; subclasses say why."""


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


class ModelTimeout(ModelError):
    """The provider did not answer within the configured timeout."""


class ModelUnavailable(ModelError):
    """The provider failed (5xx, connection reset, malformed stream)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        # True only when the provider itself answered with a failure status: nothing was billed.
        self.retryable = retryable


class ModelNotFound(ModelUnavailable):
    """The server has no such model (a setting names a model it does not serve)."""


class ModelUnreachable(ModelUnavailable):
    """No connection to the model's server (refused, unknown host); `server` is the address tried."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server
