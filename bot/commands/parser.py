"""Turning a typed line like `/ask "what is X?"` into a Command."""

from __future__ import annotations

import re
import shlex

from bot.messages import Command

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def parse_command_line(line: str) -> Command | None:
    """The Command a line starting with `/` spells, or None when the line is ordinary text.

    Arguments are split shell-style so quotes group words; an unbalanced quote falls back to
    splitting on whitespace rather than failing.
    """
    stripped = line.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    head, _, rest = stripped[1:].partition(" ")
    name = head.lower()
    if not _NAME.fullmatch(name):
        return None
    text = rest.strip()
    try:
        args = tuple(shlex.split(text))
    except ValueError:
        args = tuple(text.split())
    return Command(name=name, text=text, args=args)
