"""A chat turn's writes in fewer round trips on PostgreSQL: the statements of storage/sql/store.py joined into one
by a data-modifying WITH (which SQLite lacks; its one trip to its thread runs them together already).

A message's running total (tokens_before) is where its conversation's total stood (`conversations.tokens_total`):
its insert moves the total on first, by an UPDATE of the conversation's row in the same statement. An UPDATE that
finds the row locked by another writer waits for it, then works on the row as that writer committed it (READ
COMMITTED's re-check), so messages stored at once, from any process, take consecutive totals. Every other change to
a conversation's messages' tokens (an edit, a deletion, /forget) sets its total again from its messages, holding
the conversation's row: the total is always where the conversation's last message ends.

Each joined statement runs after the conversation's lock was taken by the statement before it, in the same
transaction: under READ COMMITTED a statement's snapshot is taken when it starts, so it sees every message
committed before the lock was granted. The parts of one statement share that snapshot and cannot see each other's
rows, so only parts on different rows are joined: the reply and its settlement and releases touch four tables;
the question's window reads the messages as they were, plus the question from what its insert returned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from storage.sql.connection import Statement
from storage.sql.store import ADD_MESSAGE, last_end

# A conversation's running total as its messages say: where its last message ends (0: none). Set by the migration
# that added the column, by migrate-db after its copy, and again after an edit or a deletion (RECOUNT).
TOTAL_OF_MESSAGES = f"COALESCE({last_end('conversations.id')}, 0)"
RECOUNT = f"UPDATE conversations SET tokens_total = {TOTAL_OF_MESSAGES} WHERE id IN (LIST($1 AS bigint))"
# The conversations a deletion will touch, locked before it in id order (as every writer of several takes them),
# so RECOUNT, a later statement of the transaction, sees every message committed before: {} a query of their ids.
LOCK_CONVERSATIONS = "SELECT id FROM conversations WHERE id IN ({}) ORDER BY id FOR UPDATE"

# ADD_MESSAGE with its running total taken from the conversation's row, moved on by the message's tokens ($4)
# first. No conversation: no total (0), and the insert fails on its foreign key as ADD_MESSAGE does.
_COUNTED = (
    "counted AS (UPDATE conversations SET tokens_total = tokens_total + CAST($4 AS INTEGER) WHERE id = $1"
    " RETURNING tokens_total - CAST($4 AS INTEGER))"
)
_INSERT_COUNTED = ADD_MESSAGE.replace(last_end("$1"), "(SELECT * FROM counted)")
assert _INSERT_COUNTED != ADD_MESSAGE
MESSAGE_INSERT = f"WITH {_COUNTED} {_INSERT_COUNTED}"
# Statements that begin with a data-modifying WITH of their own, and the rest of them: joined, that WITH's part goes
# to the top, under its own name (PostgreSQL takes a data-modifying WITH only at the top level).
_LEADING = {MESSAGE_INSERT: (_COUNTED, _INSERT_COUNTED)}

# The question stored and its window read (WINDOW's rule, once the question is in): the question's id on
# every row, then the window's rows (none: one row of NULLs), oldest first. $14: the window's tokens.
# The insert ends with RETURNING id: the question's columns that the window reads follow it.
ASK = f"""
WITH {_COUNTED},
asked AS ({_INSERT_COUNTED}, role, content, tokens, tokens_before, images, tokens_before + tokens AS total),
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
        leading, sql = _LEADING.get(sql, (None, sql))
        if leading is not None:
            parts.append(_renumbered(leading, offset))
        parts.append(f"p{i} AS ({_renumbered(sql.strip(), offset)})")
        offset += count
    read = ", ".join(f"(SELECT * FROM p{i} LIMIT 1)" for i in range(returning))
    return f"WITH {', '.join(parts)} SELECT {read}"


def _renumbered(sql: str, offset: int) -> str:
    """`sql` with each placeholder `$n` as `$(n + offset)`."""
    return _PLACEHOLDER.sub(lambda m: f"${int(m[1]) + offset}", sql)
