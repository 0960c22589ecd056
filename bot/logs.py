"""Logging set-up, with every configured secret scrubbed from every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

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


def configure_logging(
    level: str, secrets: Iterable[str] = (), *, library_level: str = "INFO", file: Path | None = None
) -> Path | None:
    """Log at `level` (other packages at `library_level` at most) to stderr, or to `file` when given (the
    console's stdout and terminal are the conversation).

    Returns the file the log goes to, or None for stderr. A file that cannot be opened falls back to
    stderr at WARNING, so the conversation stays readable and the problem is still seen.
    """
    handler: logging.Handler
    used: Path | None = None
    floor = logging.NOTSET
    if file is not None:
        try:
            handler = logging.FileHandler(file, encoding="utf-8", delay=False)
            used = file.resolve()
        except OSError as exc:
            handler = logging.StreamHandler(sys.stderr)
            floor = logging.WARNING
            print(f"Cannot write the log to {file} ({exc.strerror}); warnings go to stderr.", file=sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(QuietLibraries(logging.getLevelNamesMapping()[library_level]))
    handler.addFilter(RedactSecrets(secrets))
    handler.setLevel(floor)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients log every request (with its body) at INFO/DEBUG: users' messages do not
    # belong in the log, so these stay at WARNING whatever LOG_LEVEL says. matplotlib narrates its
    # font cache at INFO on every /usage team chart.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "openai", "aiohttp.access", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return used


def log_file() -> Path | None:
    """The file the log goes to (for the console's greeting), or None when it goes to a stream."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None
