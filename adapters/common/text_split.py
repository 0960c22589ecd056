"""Splitting a long reply into platform-sized messages without breaking a code block.

Splits prefer a paragraph break, then a line break, then a space; a code fence open at a split is
closed at the end of the chunk and reopened (with its language) at the start of the next one.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_FENCE = re.compile(r"^\s*```(\S*)", re.MULTILINE)


class Chunk(NamedTuple):
    """One message: `piece` is a run of the original text; `reopen`/`close` are the fence repairs."""

    reopen: str
    piece: str
    close: str

    @property
    def text(self) -> str:
        """What is sent."""
        return self.reopen + self.piece + self.close


def split_chunks(text: str, limit: int, reopen: str = "") -> list[Chunk]:
    """Chunks whose pieces concatenate to `text`, each at most `limit` characters once repaired.

    `reopen` is the fence to start with when `text` continues a code block split off earlier.
    """
    if limit < 40:
        raise ValueError("limit too small to hold a reopened code fence")
    chunks: list[Chunk] = []
    rest = text
    while len(reopen) + len(rest) > limit:
        cut = _cut_point(rest, limit - len(reopen) - 4)  # room for a closing "\n```"
        piece = rest[:cut]
        language = _open_fence(reopen + piece)
        close = "" if language is None else ("" if piece.endswith("\n") else "\n") + "```"
        chunks.append(Chunk(reopen, piece, close))
        reopen = "" if language is None else f"```{language}\n"
        rest = rest[cut:]
    chunks.append(Chunk(reopen, rest, ""))
    return chunks


def first_cut(text: str, limit: int, at_least: int) -> Chunk:
    """The first message of `text` when its first `at_least` characters are already out: the piece ends
    at the best break between there and the limit, and closes a code block it leaves open."""
    cut = max(_cut_point(text, limit - 4), at_least)
    piece = text[:cut]
    language = _open_fence(piece)
    close = "" if language is None else ("" if piece.endswith("\n") else "\n") + "```"
    return Chunk("", piece, close)


def reopen_after(piece: str) -> str:
    """The fence to start the next message with, when `piece` leaves a code block open."""
    language = _open_fence(piece)
    return "" if language is None else f"```{language}\n"


def split_message(text: str, limit: int) -> list[str]:
    """The messages to send for `text`, each at most `limit` characters."""
    return [chunk.text for chunk in split_chunks(text, limit)]


def _cut_point(text: str, budget: int) -> int:
    """Where to cut so the first part is at most `budget` long: the last good break, else the budget."""
    window = text[:budget]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > budget // 3:
            return at + len(separator)
    return budget


def _open_fence(text: str) -> str | None:
    """The language of a code block left open at the end of `text` ("" for none), or None when closed."""
    language = None
    for match in _FENCE.finditer(text):
        language = match.group(1) if language is None else None
    return language
