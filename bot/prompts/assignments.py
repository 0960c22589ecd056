"""`key=value` arguments, the same on every adapter: `topic="two words" model=gpt-4.1-mini`.

The command's words arrive already split shell-style (bot.commands.parser), so quoting is done;
here a word is an assignment when it starts with an identifier and `=`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from bot.errors import BadCommand

_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)


def split_assignments(words: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Positional words and `key=value` pairs; a key given twice is an error."""
    positional: list[str] = []
    values: dict[str, str] = {}
    for word in words:
        match = _ASSIGNMENT.fullmatch(word)
        if match is None:
            positional.append(word)
            continue
        key, value = match.groups()
        if key in values:
            raise BadCommand(f"{key}= is given twice.")
        values[key] = value
    return positional, values


def join_assignments(values: Mapping[str, str]) -> str:
    """The inverse of split_assignments after shell-style splitting: quotes where needed."""
    return " ".join(shlex.quote(f"{key}={value}") for key, value in values.items())
