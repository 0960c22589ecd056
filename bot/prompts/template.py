"""Prompt templates with `{variables}`, filled by plain substitution: nothing in a template is evaluated.

Only `{name}` (an identifier) is a variable. `{{` and `}}` are literal braces. Anything else in
braces, such as `{x.__class__}` or `{0}`, is literal text: never `str.format` on user input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.errors import BadCommand

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def variables(template: str) -> list[str]:
    """The template's variables, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in _TOKEN.finditer(template) if m.group(1)))


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with every variable replaced; a missing or unknown variable is a clear error."""
    expected = variables(template)
    missing = [name for name in expected if name not in values]
    unknown = [name for name in values if name not in expected]
    if missing or unknown:
        wanted = " ".join(f"{name}=…" for name in expected) or "no variables"
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(unknown)}")
        raise BadCommand(f"This prompt expects {wanted} ({'; '.join(problems)}).")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]  # "{{" -> "{", "}}" -> "}"
        return values[name]

    return _TOKEN.sub(replace, template)
