"""Logging set-up, with every configured secret scrubbed from every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replaces known secret values in a record's final message (and traceback) with [redacted]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self._secrets:
            message = message.replace(secret, REDACTED)
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        record.msg, record.args = message, None
        return True


OUR_LOGGERS = ("bot", "adapters", "storage", "__main__")


class QuietLibraries(logging.Filter):
    """Drops other packages' records below `floor`: their DEBUG lines carry users' text (SQL parameters,
    request bodies); ours carry ids and sizes."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self._floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self._floor:
            return True
        return record.name.split(".", 1)[0] in OUR_LOGGERS


def configure_logging(level: str, secrets: Iterable[str] = (), *, library_level: str = "INFO") -> None:
    """Log to stderr at `level` (other packages at `library_level` at most); the console adapter owns stdout."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(QuietLibraries(logging.getLevelNamesMapping()[library_level]))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients log every request (with its body) at INFO/DEBUG: users' messages do not
    # belong in the log, so these stay at WARNING whatever LOG_LEVEL says.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
