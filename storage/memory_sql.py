"""SQL of semantic memory shared by both backends: `?N` for SQLite, `$N` for PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from storage.memory_records import EMBEDDED, PENDING, MemoryHit, VectorScope

Style = Literal["?", "$"]

# Read by the claim: the text to embed and the team that pays for it.
PENDING_COLUMNS = "m.id, m.content, c.platform, c.team_id, c.channel_id"
PENDING_FILTER = (
    f"m.embed_state = {PENDING} AND m.role IN ('user', 'assistant')"
    " AND (m.embed_claimed_until IS NULL OR m.embed_claimed_until < {now})"
)

HIT_COLUMNS = (
    "m.id, m.conversation_id, m.role, m.content, m.tokens, m.author_name, m.created_at, c.channel_id, c.thread_id,"
    " m.platform_message_id"
)


def save_vector_sql(style: Style) -> str:
    """Insert (or replace) one message's vector, copying its team and channel; a deleted message adds nothing."""
    p = _params(style)
    return (
        "INSERT INTO message_vectors (message_id, conversation_id, platform, team_id, channel_id, created_at, model,"
        f" vector) SELECT m.id, m.conversation_id, c.platform, c.team_id, c.channel_id, m.created_at, {p(2)}, {p(3)}"
        f" FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = {p(1)}"
        " ON CONFLICT (message_id) DO UPDATE SET model = excluded.model, vector = excluded.vector"
    )


def mark_sql(style: Style, state: int) -> str:
    """Set messages' embed_state (and drop their claim); the ids are one array/JSON parameter."""
    return f"UPDATE messages SET embed_state = {state}, embed_claimed_until = NULL WHERE id IN ({_ids(style)})"


def requeue_sql(style: Style) -> str:
    """Embedded messages whose vector is of another model: back to waiting (their old vector stays till then).

    `<` or `>` rather than `<>`, so both sides read the model index: instant when there are none.
    """
    key = _params(style)(1)
    return (
        f"UPDATE messages SET embed_state = {PENDING}, embed_claimed_until = NULL WHERE embed_state = {EMBEDDED}"
        f" AND id IN (SELECT message_id FROM message_vectors WHERE model < {key} OR model > {key})"
    )


def scan_sql(style: Style, scope: VectorScope, after_id: int, limit: int) -> tuple[str, list[Any]]:
    """One page of a scope's vectors in message-id order, after `after_id` (keyset paging)."""
    p = _params(style)
    where = [f"platform = {p(1)}", f"team_id = {p(2)}", f"model = {p(3)}", f"message_id > {p(4)}"]
    params: list[Any] = [scope.platform, scope.team_id, scope.model, after_id]

    def add(condition: str, value: Any) -> None:
        params.append(value)
        where.append(condition.format(p(len(params))))

    if scope.conversation_id is not None:
        add("conversation_id = {}", scope.conversation_id)
    if scope.before_message_id is not None:
        add("message_id < {}", scope.before_message_id)
    if scope.since is not None:
        add("created_at >= {}", scope.since.isoformat())
    if scope.channels is not None:
        add(f"channel_id IN ({_texts(style, len(params) + 1)})", _array(style, scope.channels))
    params.append(limit)
    sql = (
        f"SELECT message_id, vector FROM message_vectors WHERE {' AND '.join(where)}"
        f" ORDER BY message_id LIMIT {p(len(params))}"
    )
    return sql, params


def channels_sql(style: Style) -> str:
    """The channels of a team that hold vectors of a model."""
    p = _params(style)
    return (
        "SELECT DISTINCT channel_id FROM message_vectors"
        f" WHERE platform = {p(1)} AND team_id = {p(2)} AND model = {p(3)} ORDER BY channel_id"
    )


def hits_sql(style: Style) -> str:
    """Messages by id, with their conversation's channel and thread; the ids are one array/JSON parameter."""
    return (
        f"SELECT {HIT_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        f" WHERE m.id IN ({_ids(style)})"
    )


def hit(row: Sequence[Any]) -> MemoryHit:
    """A hits_sql row as a record."""
    return MemoryHit(
        message_id=row[0],
        conversation_id=row[1],
        role=row[2],
        content=row[3],
        tokens=row[4],
        author_name=row[5],
        created_at=datetime.fromisoformat(row[6]),
        channel_id=row[7],
        thread_id=row[8],
        platform_message_id=row[9],
    )


def ids_param(style: Style, ids: Sequence[int]) -> Any:
    """The one parameter `_ids` expects."""
    return list(ids) if style == "$" else _json(ids)


def _array(style: Style, values: Sequence[str]) -> Any:
    return list(values) if style == "$" else _json(values)


def _ids(style: Style) -> str:
    return "SELECT unnest($1::bigint[])" if style == "$" else "SELECT value FROM json_each(?1)"


def _texts(style: Style, n: int) -> str:
    return f"SELECT unnest(${n}::text[])" if style == "$" else f"SELECT value FROM json_each(?{n})"


def _params(style: Style) -> Any:
    return (lambda n: f"${n}") if style == "$" else (lambda n: f"?{n}")


def _json(values: Sequence[Any]) -> str:
    return json.dumps(list(values))
