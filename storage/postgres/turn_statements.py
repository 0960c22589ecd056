"""A chat turn's writes in fewer round trips on PostgreSQL: a message stored by one statement, with no lock taken
before it and no transaction around it, and the statements of a reply joined into one by a data-modifying WITH
(which SQLite lacks; its one trip to its thread runs them together already).

A message's running total (tokens_before) is where its conversation's total stood (`conversations.tokens_total`):
its insert moves the total on first, by an UPDATE of the conversation's row in the same statement. An UPDATE that
finds the row locked by another writer waits for it, then works on the row as that writer committed it (READ
COMMITTED's re-check), so messages stored at once, from any process, take consecutive totals. Every other change to
a conversation's messages' tokens (an edit, a deletion, /forget) sets its total again from its messages, holding
the conversation's row: the total is always where the conversation's last message ends.

The rest of such a statement reads the database as it was when the statement started, before it waited: a message
committed by the writer it waited for is not in it. So the question's statement (OPEN_AND_ASK) keeps the window it
read only when it did not meet such a writer (the row it moved on is the version it read); else the window is read
by a statement after the insert (WINDOW_TO). What is joined with a reply's insert touches other rows only: its
settlement and the turn's leases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from storage.postgres.database import NO_FLUSH
from storage.sql.connection import Statement
from storage.sql.store import last_end, message_insert, open_conversation

# A turn's lease on its thread: taken unless another holder's is live. Its commit does not wait for the disk
# (NO_FLUSH): a lease lost in a server crash is harmless (that ends the turn).
TAKE_LEASE = (
    "INSERT INTO turn_leases (key, token, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))"
    " ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at"
    f" WHERE turn_leases.expires_at < now() RETURNING true, {NO_FLUSH}"
)

# A conversation's running total as its messages say: where its last message ends (0: none). Set by the migration
# that added the column, by migrate-db after its copy, and again after an edit or a deletion (RECOUNT).
TOTAL_OF_MESSAGES = f"COALESCE({last_end('conversations.id')}, 0)"
RECOUNT = f"UPDATE conversations SET tokens_total = {TOTAL_OF_MESSAGES} WHERE id IN (LIST($1 AS bigint))"
# The conversations a deletion will touch, locked before it in id order (as every writer of several takes them),
# so RECOUNT, a later statement of the transaction, sees every message committed before: {} a query of their ids.
LOCK_CONVERSATIONS = "SELECT id FROM conversations WHERE id IN ({}) ORDER BY id FOR UPDATE"


# ADD_MESSAGE with its running total taken from the conversation's row, moved on by the message's tokens ($4)
# first. Its values are selected from that move, so the message's id is drawn after it (ids follow the running totals,
# which order messages of no tokens); no conversation: a total of 0, and the insert fails on its foreign key.
# The total is never taken below where the last message (as this statement sees them) ends: a message stored by a
# writer that does not move the total (a process of the version before it, still running during a rolling deploy)
# is counted all the same, so the next message's running total does not overlap it.
def _counted(where: str, tokens: str) -> str:
    """The part of a WITH that moves the running total of the conversation `where` selects on by `tokens`: its id
    and where it stood (`before`)."""
    return (
        "counted AS (UPDATE conversations SET tokens_total = GREATEST(tokens_total, "
        f"{last_end('conversations.id')}) + CAST({tokens} AS INTEGER) WHERE {where}"
        f" RETURNING id, tokens_total - CAST({tokens} AS INTEGER) AS before)"
    )


_COUNTED = _counted("id = $1", "$4")
_INSERT_COUNTED = message_insert("COALESCE(counted.before, 0)", " FROM (VALUES (1)) AS one LEFT JOIN counted ON true")
MESSAGE_INSERT = f"WITH {_COUNTED} {_INSERT_COUNTED}"

# A turn's first statement: the open conversation at the thread's key ($1-$4) read, as OPEN_CONVERSATION reads it
# (none open: one started as START_CONVERSATION starts it, $20 the time), and the question stored in it as
# MESSAGE_INSERT stores it, when its system prompt surely leaves the question room (EagerQuestion: NULL, the default
# prompt, when $5; else at most $6 bytes); $7-$18 the question's ADD_MESSAGE parameters after the conversation's
# id. With it, the messages before the question that a window of $19 tokens (the widest it can have) takes. Its
# rows: the conversation's columns, the question's id and running total (NULL: not stored), then one of those
# messages each (NULL: none). No row: another process started the thread's conversation first; the caller reads it.
#
# Those messages are read as the statement's snapshot has them, taken before it waited for the conversation's row,
# if it did. So the question is stored only when the row it moves on is the version the snapshot read (the UPDATE
# re-checks its xmin on the row it got): every writer of a conversation's messages moves its row on (a message's
# insert, an edit's or deletion's recount), so none committed a change to them in between, and the messages read
# are all there are before the question. Else (another writer got there first, or the conversation was ended
# meanwhile) nothing is stored, and the caller stores the question and reads its window by statements of their own.
# A conversation started here starts with the question (its running total the question's tokens), its whole window.
_ASKED_AFTER_KEY = 5  # the question's parameters follow the key's four and the two of the room
_ASKED = re.sub(
    r"\$(\d+)",
    lambda m: "target.id" if m[1] == "1" else f"${int(m[1]) + _ASKED_AFTER_KEY}",
    message_insert("target.before", " FROM target"),
)
_TOKENS = f"CAST(${4 + _ASKED_AFTER_KEY} AS INTEGER)"
_CHANNEL = "FROM channel_settings WHERE platform = $1 AND team_id = $2 AND channel_id = $3"


def _room(prompt: str) -> str:
    """Whether the system prompt `prompt` (NULL: the default one) surely leaves the question room (EagerQuestion): its
    UTF-8 bytes, whatever the database's own encoding."""
    return f"CASE WHEN {prompt} IS NULL THEN $5 ELSE octet_length(convert_to({prompt}, 'UTF8')) <= $6 END"


_AS_READ = f"id = (SELECT id FROM open WHERE {_room('system_prompt')}) AND ended_at IS NULL"
OPEN_AND_ASK = f"""
WITH open AS ({open_conversation("c.xmin AS version")}),
{_counted(f"{_AS_READ} AND xmin = (SELECT version FROM open)", _TOKENS)},
started AS (
    INSERT INTO conversations (platform, team_id, channel_id, thread_id, created_at, system_prompt, tokens_total)
    SELECT $1, $2, $3, $4, $20, persona, CASE WHEN {_room("persona")} THEN {_TOKENS} ELSE 0 END
    FROM (SELECT (SELECT persona {_CHANNEL}) AS persona) AS channel
    WHERE NOT EXISTS (SELECT 1 FROM open)
    ON CONFLICT (platform, team_id, channel_id, thread_id) WHERE ended_at IS NULL DO NOTHING
    RETURNING id, created_at, system_prompt
),
target AS (
    SELECT id, before FROM counted UNION ALL SELECT id, 0 FROM started WHERE {_room("system_prompt")}
),
asked AS ({_ASKED}),
earlier AS (
    SELECT m.role, m.content, m.tokens, m.id, m.tokens_before, m.images FROM counted
    JOIN messages m ON m.conversation_id = counted.id AND m.tokens_before >= counted.before + {_TOKENS} - $19
),
found AS (
    SELECT id, created_at, system_prompt, model, reasoning_effort FROM open
    UNION ALL
    SELECT id, created_at, system_prompt, (SELECT model {_CHANNEL}), (SELECT reasoning_effort {_CHANNEL}) FROM started
)
SELECT f.id, f.created_at, f.system_prompt, f.model, f.reasoning_effort, (SELECT id FROM asked),
    (SELECT before FROM target), e.role, e.content, e.tokens, e.id, e.tokens_before, e.images
FROM found f LEFT JOIN earlier e ON true ORDER BY e.tokens_before, e.id
"""
# Statements that begin with a data-modifying WITH of their own, and the rest of them: joined, that WITH's part goes
# to the top, under its own name (PostgreSQL takes a data-modifying WITH only at the top level).
_LEADING = {MESSAGE_INSERT: (_COUNTED, _INSERT_COUNTED)}

# The window that ends at the question $1 (WINDOW's rule, as if nothing came after it): $2 the window's tokens.
WINDOW_TO = """
SELECT m.role, m.content, m.tokens, m.id, m.tokens_before, m.images FROM messages q
JOIN messages m ON m.conversation_id = q.conversation_id
    AND m.tokens_before BETWEEN q.tokens_before + q.tokens - $2 AND q.tokens_before
    AND (m.tokens_before < q.tokens_before OR m.id <= q.id)
WHERE q.id = $1 ORDER BY m.tokens_before, m.id
"""

_PLACEHOLDER = re.compile(r"\$(\d+)")


def joined(statements: Sequence[Statement], returning: int) -> Statement:
    """`statements` as one: each a part of a WITH, its placeholders renumbered after the parts before it. Its one
    row: what each of the first `returning` parts returned first (a RETURNING of one column), NULL where one
    returned nothing. Every part runs to its end whether read or not: those read first, in their order (each when
    the row reads it), then the others."""
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
