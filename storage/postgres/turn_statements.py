"""A chat turn's writes in fewer round trips on PostgreSQL: the statements of storage/sql/store.py joined into one
by a data-modifying WITH (which SQLite lacks; its one trip to its thread runs them together already).

Each joined statement runs after the conversation's lock was taken by the statement before it, in the same
transaction: under READ COMMITTED a statement's snapshot is taken when it starts, so it sees every message
committed before the lock was granted and the running token total (tokens_before) stays exact. The parts of
one statement share that snapshot and cannot see each other's rows, so only parts on different rows are
joined: the reply and its settlement and releases touch four tables; the question's window reads the
messages as they were, plus the question from what its insert returned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from storage.sql.connection import Statement
from storage.sql.store import ADD_MESSAGE

# The question stored and its window read (WINDOW's rule, once the question is in): the question's id on
# every row, then the window's rows (none: one row of NULLs), oldest first. $14: the window's tokens.
# ADD_MESSAGE ends with RETURNING id: the question's columns that the window reads follow it.
ASK = f"""
WITH asked AS ({ADD_MESSAGE}, role, content, tokens, tokens_before, images, tokens_before + tokens AS total),
fits AS (
    SELECT role, content, tokens, id, tokens_before, images FROM messages
    WHERE conversation_id = $1 AND tokens_before >= (SELECT total FROM asked) - $14
    UNION ALL SELECT role, content, tokens, id, tokens_before, images FROM asked WHERE tokens_before >= total - $14
)
SELECT a.id, w.role, w.content, w.tokens, w.id, w.tokens_before, w.images FROM asked a LEFT JOIN fits w ON true
ORDER BY w.tokens_before, w.id
"""

_PLACEHOLDER = re.compile(r"\$(\d+)")


def joined(statements: Sequence[Statement], returning: int) -> Statement:
    """`statements` as one: each a part of a WITH, its placeholders renumbered after the parts before it. Its one
    row: what each of the first `returning` parts returned first (a RETURNING of one column), NULL where one
    returned nothing. Every part runs to its end whether read or not."""
    shapes = tuple((sql, len(params)) for sql, params in statements)
    return _joined(shapes, returning), tuple(arg for _, params in statements for arg in params)


@lru_cache(maxsize=64)
def _joined(shapes: tuple[tuple[str, int], ...], returning: int) -> str:
    """The joined text, once per shape (each statement's text and how many parameters it takes)."""
    parts: list[str] = []
    offset = 0
    for i, (sql, count) in enumerate(shapes):
        parts.append(f"p{i} AS ({_renumbered(sql.strip(), offset)})")
        offset += count
    read = ", ".join(f"(SELECT * FROM p{i} LIMIT 1)" for i in range(returning))
    return f"WITH {', '.join(parts)} SELECT {read}"


def _renumbered(sql: str, offset: int) -> str:
    """`sql` with each placeholder `$n` as `$(n + offset)`."""
    return _PLACEHOLDER.sub(lambda m: f"${int(m[1]) + offset}", sql)
