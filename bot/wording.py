"""Small rules of the bot's English, kept in one place: "1 run", "2 runs"."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun in the number it needs: count(1, "run") == "1 run", count(2, "run") == "2 runs"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


# Singulars of the plural names that stores use as keys of their counts.
_SINGULAR = {
    "messages": "message",
    "replies": "reply",
    "ratings": "rating",
    "prompt runs": "prompt run",
    "dashboard sign-ins": "dashboard sign-in",
    "assistant threads": "assistant thread",
    "records pseudonymized": "record pseudonymized",
    "prompts": "prompt",
    "versions": "version",
    "runs": "run",
}


def tally(counts: dict[str, int]) -> str:
    """{"messages": 1, "replies": 2} -> "1 message, 2 replies"."""
    return ", ".join(f"{n:,} {_SINGULAR.get(what, what) if n == 1 else what}" for what, n in counts.items())


def sentence(text: str) -> str:
    """`text` with its first letter in upper case and the rest untouched (ids keep their case)."""
    return text[:1].upper() + text[1:]
