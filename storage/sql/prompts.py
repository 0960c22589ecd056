"""The team's prompt library, for both databases: prompts, versions, runs and ratings, export and import."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from storage.base import ImportConflict
from storage.prompt_records import PromptRecord, PromptRun, PromptSummary, PromptVersion, Rating, VersionStats
from storage.sql.connection import Connection, Database, Row, prompt_lock

VERSION = (
    "SELECT v.id, p.team_id, p.name, v.version, v.template, v.system_prompt, v.model, v.temperature,"
    " v.author_id, v.created_at FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id"
)
RUN = (
    "SELECT uid, version_id, team_id, user_id, inputs, model, temperature, output, error, input_tokens,"
    " output_tokens, cost_nanos, latency_ms, created_at, id FROM prompt_runs"
)
INSERT_RUN = (
    "INSERT INTO prompt_runs (uid, version_id, team_id, user_id, inputs, model, temperature, output, error,"
    " input_tokens, output_tokens, cost_nanos, latency_ms, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
)
LIVE_PROMPT = "SELECT id FROM prompts WHERE team_id = $1 AND name = $2 AND deleted_at IS NULL"
NEW_PROMPT = "INSERT INTO prompts (team_id, name, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id"
NEXT_VERSION = (
    "INSERT INTO prompt_versions (prompt_id, version, template, system_prompt, model, temperature,"
    " author_id, created_at) VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions"
    " WHERE prompt_id = $1), $2, $3, $4, $5, $6, $7) RETURNING id"
)
LIVE = "p.team_id = $1 AND p.name = $2 AND p.deleted_at IS NULL"
ONE_VERSION = (
    f"{VERSION} WHERE {LIVE} AND (CAST($3 AS INTEGER) IS NULL OR v.version = $3) ORDER BY v.version DESC LIMIT 1"
)
ALL_VERSIONS = f"{VERSION} WHERE {LIVE} ORDER BY v.version"
SUMMARIES = (
    "SELECT p.name, MAX(v.version), p.created_by, MAX(v.created_at),"
    " (SELECT count(*) FROM prompt_runs r JOIN prompt_versions rv ON rv.id = r.version_id"
    "  WHERE rv.prompt_id = p.id)"
    " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id"
    " WHERE p.team_id = $1 AND p.deleted_at IS NULL"
    " AND (CAST($2 AS TEXT) IS NULL OR strpos(lower(p.name), lower($2)) > 0)"
    " GROUP BY p.id ORDER BY p.name"
)
CREATOR = "SELECT created_by FROM prompts WHERE team_id = $1 AND name = $2 AND deleted_at IS NULL"
DELETE = (
    "UPDATE prompts SET deleted_by = $1, deleted_at = $2 WHERE team_id = $3 AND name = $4 AND deleted_at IS NULL"
    " RETURNING id"
)
RATE = (
    "INSERT INTO prompt_ratings (run_id, user_id, rating, comment, rated_at)"
    " SELECT id, $1, $2, $3, $4 FROM prompt_runs WHERE id = $5 AND team_id = $6"
    " ON CONFLICT (run_id, user_id) DO UPDATE SET rating = excluded.rating, comment = excluded.comment,"
    " rated_at = excluded.rated_at RETURNING run_id"
)
STATS = (
    "SELECT v.version, count(r.id),"
    " (SELECT count(*) FROM prompt_ratings g JOIN prompt_runs gr ON gr.id = g.run_id"
    "  WHERE gr.version_id = v.id),"
    " (SELECT avg(g.rating) FROM prompt_ratings g JOIN prompt_runs gr ON gr.id = g.run_id"
    "  WHERE gr.version_id = v.id),"
    " COALESCE(avg(r.cost_nanos), 0), COALESCE(avg(r.latency_ms), 0)"
    " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id"
    " LEFT JOIN prompt_runs r ON r.version_id = v.id AND r.error IS NULL"
    " WHERE p.team_id = $1 AND p.name = $2 AND p.deleted_at IS NULL GROUP BY v.id"
)
EXPORT_PROMPTS = (
    "SELECT id, team_id, name, created_by, created_at, deleted_by, deleted_at FROM prompts"
    " WHERE (CAST($1 AS TEXT) IS NULL OR team_id = $1) ORDER BY team_id, name, id"
)
RATINGS = "SELECT user_id, rating, comment, rated_at FROM prompt_ratings WHERE run_id = $1 ORDER BY user_id"
SAME_PROMPT = "SELECT id FROM prompts WHERE team_id = $1 AND name = $2 AND created_at = $3"
IMPORT_PROMPT = (
    "INSERT INTO prompts (team_id, name, created_by, created_at, deleted_by, deleted_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
)
STORED_VERSION = (
    "SELECT id, template, system_prompt, model, temperature FROM prompt_versions WHERE prompt_id = $1 AND version = $2"
)
IMPORT_VERSION = (
    "INSERT INTO prompt_versions (prompt_id, version, template, system_prompt, model, temperature,"
    " author_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
)
RUN_BY_UID = "SELECT id FROM prompt_runs WHERE uid = $1"
IMPORT_RATING = (
    "INSERT INTO prompt_ratings (run_id, user_id, rating, comment, rated_at) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT DO NOTHING RETURNING 1"
)


class SQLPromptLibrary:
    """Versioned prompts per team. Versions are immutable; deleting a prompt keeps its runs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save_version(
        self, team_id: str, name: str, template: str, *, system_prompt: str | None, model: str | None,
        temperature: float | None, author_id: str, now: datetime,
    ) -> PromptVersion:  # fmt: skip
        """Add the next version of `name` (creating the prompt at v1), holding the prompt's lock."""
        async with self._db.transaction(prompt_lock(team_id, name)) as tx:
            prompt_id = await tx.fetchval(LIVE_PROMPT, team_id, name)
            if prompt_id is None:
                prompt_id = await tx.fetchval(NEW_PROMPT, team_id, name, author_id, now.isoformat())
            version_id = await tx.fetchval(
                NEXT_VERSION, prompt_id, template, system_prompt, model, temperature, author_id, now.isoformat()
            )
            row = await tx.fetchrow(f"{VERSION} WHERE v.id = $1", version_id)
        return version_from_row(row)

    async def version(self, team_id: str, name: str, number: int | None = None) -> PromptVersion | None:
        """Version `number` of a live prompt, or its latest."""
        row = await self._db.fetchrow(ONE_VERSION, team_id, name, number)
        return version_from_row(row) if row else None

    async def versions(self, team_id: str, name: str) -> list[PromptVersion]:
        """Every version of a live prompt, oldest first."""
        return [version_from_row(row) for row in await self._db.fetch(ALL_VERSIONS, team_id, name)]

    async def summaries(self, team_id: str, contains: str | None = None) -> list[PromptSummary]:
        """The team's live prompts, by name; `contains` filters names (case-insensitive)."""
        rows = await self._db.fetch(SUMMARIES, team_id, contains)
        return [PromptSummary(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4]) for r in rows]

    async def creator(self, team_id: str, name: str) -> str | None:
        """Who created a live prompt."""
        created_by = await self._db.fetchval(CREATOR, team_id, name)
        return None if created_by is None else str(created_by)

    async def delete(self, team_id: str, name: str, *, by: str, now: datetime) -> bool:
        """Mark a prompt deleted: its name is free again; its versions and runs stay readable."""
        return await self._db.fetchrow(DELETE, by, now.isoformat(), team_id, name) is not None

    async def add_run(self, run: PromptRun) -> int:
        """Record one run; returns its id (what /prompt rate takes)."""
        return int(await self._db.fetchval(INSERT_RUN, *run_params(run)))

    async def run(self, team_id: str, run_id: int) -> PromptRun | None:
        """One run of the team's."""
        row = await self._db.fetchrow(f"{RUN} WHERE id = $1 AND team_id = $2", run_id, team_id)
        return run_from_row(row) if row else None

    async def rate(self, team_id: str, run_id: int, user_id: str, rating: int, comment: str, now: datetime) -> bool:
        """Rate a run of the team's (rating again replaces your earlier rating); False if no such run."""
        row = await self._db.fetchrow(RATE, user_id, rating, comment, now.isoformat(), run_id, team_id)
        return row is not None

    async def stats(self, team_id: str, name: str) -> list[VersionStats]:
        """Per version of a live prompt: runs, ratings, average cost and latency of successful runs."""
        return [
            VersionStats(r[0], r[1], r[2], None if r[3] is None else float(r[3]), float(r[4]), float(r[5]))
            for r in await self._db.fetch(STATS, team_id, name)
        ]

    async def export(self, team_id: str | None) -> list[PromptRecord]:
        """Every prompt (deleted ones too), with versions, runs and ratings, for one team or all."""
        records = []
        for p in await self._db.fetch(EXPORT_PROMPTS, team_id):
            versions = []
            for v in await self._db.fetch(f"{VERSION} WHERE v.prompt_id = $1 ORDER BY v.version", p[0]):
                runs = []
                for r in await self._db.fetch(f"{RUN} WHERE version_id = $1 ORDER BY id", v[0]):
                    ratings = await self._db.fetch(RATINGS, r[14])
                    runs.append(
                        run_from_row(r, tuple(Rating(g[0], g[1], g[2], datetime.fromisoformat(g[3])) for g in ratings))
                    )
                versions.append((version_from_row(v), tuple(runs)))
            records.append(
                PromptRecord(
                    p[1],
                    p[2],
                    p[3],
                    datetime.fromisoformat(p[4]),
                    p[5],
                    datetime.fromisoformat(p[6]) if p[6] else None,
                    tuple(versions),
                )
            )
        return records

    async def import_(self, records: Sequence[PromptRecord]) -> dict[str, int]:
        """Add what is missing, in one transaction; a version that differs from the stored one aborts it all."""
        added = {"prompts": 0, "versions": 0, "runs": 0, "ratings": 0}
        async with self._db.transaction() as tx:
            for record in records:
                prompt_id = await tx.fetchval(SAME_PROMPT, record.team_id, record.name, record.created_at.isoformat())
                if prompt_id is None:
                    if record.deleted_at is None and await tx.fetchval(LIVE_PROMPT, record.team_id, record.name):
                        raise ImportConflict(f"a different prompt named {record.name!r} already exists")
                    prompt_id = await tx.fetchval(
                        IMPORT_PROMPT,
                        record.team_id, record.name, record.created_by, record.created_at.isoformat(),
                        record.deleted_by, record.deleted_at.isoformat() if record.deleted_at else None,
                    )  # fmt: skip
                    added["prompts"] += 1
                for version, runs in record.versions:
                    version_id = await _import_version(tx, prompt_id, record.name, version, added)
                    for run in runs:
                        await _import_run(tx, version_id, run, added)
        return added


async def _import_version(
    tx: Connection, prompt_id: int, name: str, version: PromptVersion, added: dict[str, int]
) -> int:
    row = await tx.fetchrow(STORED_VERSION, prompt_id, version.version)
    if row is not None:
        if tuple(row[1:]) != (version.template, version.system_prompt, version.model, version.temperature):
            raise ImportConflict(f"{name} v{version.version} differs from the stored v{version.version}")
        return int(row[0])
    added["versions"] += 1
    return int(
        await tx.fetchval(
            IMPORT_VERSION,
            prompt_id,
            version.version,
            version.template,
            version.system_prompt,
            version.model,
            version.temperature,
            version.author_id,
            version.created_at.isoformat(),
        )
    )


async def _import_run(tx: Connection, version_id: int, run: PromptRun, added: dict[str, int]) -> None:
    run_id = await tx.fetchval(RUN_BY_UID, run.uid)
    if run_id is None:
        params = run_params(run)
        run_id = await tx.fetchval(INSERT_RUN, params[0], version_id, *params[2:])
        added["runs"] += 1
    for rating in run.ratings:
        inserted = await tx.fetchrow(
            IMPORT_RATING, run_id, rating.user_id, rating.rating, rating.comment, rating.rated_at.isoformat()
        )
        added["ratings"] += inserted is not None


def version_from_row(row: Row) -> PromptVersion:
    """A PromptVersion from a `VERSION` row."""
    return PromptVersion(
        id=row[0], team_id=row[1], name=row[2], version=row[3], template=row[4], system_prompt=row[5],
        model=row[6], temperature=row[7], author_id=row[8], created_at=datetime.fromisoformat(row[9]),
    )  # fmt: skip


def run_from_row(row: Row, ratings: tuple[Rating, ...] = ()) -> PromptRun:
    """A PromptRun from a `RUN` row."""
    return PromptRun(
        uid=row[0], version_id=row[1], team_id=row[2], user_id=row[3], inputs=json.loads(row[4]), model=row[5],
        temperature=row[6], output=row[7], error=row[8], input_tokens=row[9], output_tokens=row[10],
        cost_nanos=row[11], latency_ms=row[12], created_at=datetime.fromisoformat(row[13]), id=row[14],
        ratings=ratings,
    )  # fmt: skip


def run_params(run: PromptRun) -> tuple[Any, ...]:
    """A run's values in prompt_runs column order."""
    return (
        run.uid, run.version_id, run.team_id, run.user_id, json.dumps(run.inputs, sort_keys=True), run.model,
        run.temperature, run.output, run.error, run.input_tokens, run.output_tokens, run.cost_nanos,
        run.latency_ms, run.created_at.isoformat(),
    )  # fmt: skip
