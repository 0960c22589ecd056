"""The team's prompt library on PostgreSQL: the same rows and rules as sqlite_prompts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from storage.postgres.database import translated
from storage.prompt_records import PromptRecord, PromptRun, PromptSummary, PromptVersion, Rating, VersionStats
from storage.sqlite_prompts import ImportConflict, run_from_row, run_params, version_from_row

_VERSION = (
    "SELECT v.id, p.team_id, p.name, v.version, v.template, v.system_prompt, v.model, v.temperature,"
    " v.author_id, v.created_at FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id"
)
_RUN = (
    "SELECT uid, version_id, team_id, user_id, inputs, model, temperature, output, error, input_tokens,"
    " output_tokens, cost_nanos, latency_ms, created_at, id FROM prompt_runs"
)
_INSERT_RUN = (
    "INSERT INTO prompt_runs (uid, version_id, team_id, user_id, inputs, model, temperature, output, error,"
    " input_tokens, output_tokens, cost_nanos, latency_ms, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
)


class PostgresPromptLibrary:
    """Versioned prompts per team; versions are immutable; deleting keeps runs."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def save_version(
        self, team_id: str, name: str, template: str, *, system_prompt: str | None, model: str | None,
        temperature: float | None, author_id: str, now: datetime,
    ) -> PromptVersion:  # fmt: skip
        """Add the next version of `name` (creating the prompt at v1); the prompt's row lock numbers versions."""
        async with translated(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('teambot-prompt:' || $1 || ':' || $2))", team_id, name
            )
            prompt_id = await conn.fetchval(
                "SELECT id FROM prompts WHERE team_id = $1 AND name = $2 AND deleted_at IS NULL", team_id, name
            )
            if prompt_id is None:
                prompt_id = await conn.fetchval(
                    "INSERT INTO prompts (team_id, name, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    team_id, name, author_id, now.isoformat(),
                )  # fmt: skip
            version_id = await conn.fetchval(
                "INSERT INTO prompt_versions (prompt_id, version, template, system_prompt, model, temperature,"
                " author_id, created_at) VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions"
                " WHERE prompt_id = $1), $2, $3, $4, $5, $6, $7) RETURNING id",
                prompt_id, template, system_prompt, model, temperature, author_id, now.isoformat(),
            )  # fmt: skip
            row = await conn.fetchrow(f"{_VERSION} WHERE v.id = $1", version_id)
        return version_from_row(row)

    async def version(self, team_id: str, name: str, number: int | None = None) -> PromptVersion | None:
        """Version `number` of a live prompt, or its latest."""
        async with translated():
            row = await self._pool.fetchrow(
                f"{_VERSION} WHERE p.team_id = $1 AND p.name = $2 AND p.deleted_at IS NULL"
                " AND ($3::int IS NULL OR v.version = $3) ORDER BY v.version DESC LIMIT 1",
                team_id, name, number,
            )  # fmt: skip
        return version_from_row(row) if row else None

    async def versions(self, team_id: str, name: str) -> list[PromptVersion]:
        """Every version of a live prompt, oldest first."""
        async with translated():
            rows = await self._pool.fetch(
                f"{_VERSION} WHERE p.team_id = $1 AND p.name = $2 AND p.deleted_at IS NULL ORDER BY v.version",
                team_id, name,
            )  # fmt: skip
        return [version_from_row(r) for r in rows]

    async def summaries(self, team_id: str, contains: str | None = None) -> list[PromptSummary]:
        """The team's live prompts, by name; `contains` filters names (case-insensitive)."""
        async with translated():
            rows = await self._pool.fetch(
                "SELECT p.name, MAX(v.version), p.created_by, MAX(v.created_at),"
                " (SELECT count(*) FROM prompt_runs r JOIN prompt_versions rv ON rv.id = r.version_id"
                "  WHERE rv.prompt_id = p.id)"
                " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id"
                " WHERE p.team_id = $1 AND p.deleted_at IS NULL"
                " AND ($2::text IS NULL OR strpos(lower(p.name), lower($2)) > 0)"
                " GROUP BY p.id ORDER BY p.name",
                team_id, contains,
            )  # fmt: skip
        return [PromptSummary(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4]) for r in rows]

    async def creator(self, team_id: str, name: str) -> str | None:
        """Who created a live prompt."""
        async with translated():
            return await self._pool.fetchval(  # type: ignore[no-any-return]
                "SELECT created_by FROM prompts WHERE team_id = $1 AND name = $2 AND deleted_at IS NULL", team_id, name
            )

    async def delete(self, team_id: str, name: str, *, by: str, now: datetime) -> bool:
        """Mark a prompt deleted; its versions and runs stay readable."""
        async with translated():
            row = await self._pool.fetchrow(
                "UPDATE prompts SET deleted_by = $1, deleted_at = $2 WHERE team_id = $3 AND name = $4"
                " AND deleted_at IS NULL RETURNING id",
                by, now.isoformat(), team_id, name,
            )  # fmt: skip
        return row is not None

    async def add_run(self, run: PromptRun) -> int:
        """Record one run; returns its id."""
        async with translated():
            return int(await self._pool.fetchval(_INSERT_RUN, *run_params(run)))

    async def run(self, team_id: str, run_id: int) -> PromptRun | None:
        """One run of the team's."""
        async with translated():
            row = await self._pool.fetchrow(f"{_RUN} WHERE id = $1 AND team_id = $2", run_id, team_id)
        return run_from_row(row) if row else None

    async def rate(self, team_id: str, run_id: int, user_id: str, rating: int, comment: str, now: datetime) -> bool:
        """Rate a run (rating again replaces); False if the team has no such run."""
        async with translated():
            row = await self._pool.fetchrow(
                "INSERT INTO prompt_ratings (run_id, user_id, rating, comment, rated_at)"
                " SELECT id, $1, $2, $3, $4 FROM prompt_runs WHERE id = $5 AND team_id = $6"
                " ON CONFLICT (run_id, user_id) DO UPDATE SET rating = excluded.rating, comment = excluded.comment,"
                " rated_at = excluded.rated_at RETURNING run_id",
                user_id, rating, comment, now.isoformat(), run_id, team_id,
            )  # fmt: skip
        return row is not None

    async def stats(self, team_id: str, name: str) -> list[VersionStats]:
        """Per version: runs, ratings, average cost and latency of successful runs."""
        async with translated():
            rows = await self._pool.fetch(
                "SELECT v.version, count(r.id),"
                " (SELECT count(*) FROM prompt_ratings g JOIN prompt_runs gr ON gr.id = g.run_id"
                "  WHERE gr.version_id = v.id),"
                " (SELECT avg(g.rating) FROM prompt_ratings g JOIN prompt_runs gr ON gr.id = g.run_id"
                "  WHERE gr.version_id = v.id),"
                " COALESCE(avg(r.cost_nanos), 0), COALESCE(avg(r.latency_ms), 0)"
                " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id"
                " LEFT JOIN prompt_runs r ON r.version_id = v.id AND r.error IS NULL"
                " WHERE p.team_id = $1 AND p.name = $2 AND p.deleted_at IS NULL GROUP BY v.id",
                team_id, name,
            )  # fmt: skip
        return [
            VersionStats(r[0], r[1], r[2], float(r[3]) if r[3] is not None else None, float(r[4]), float(r[5]))
            for r in rows
        ]

    async def export(self, team_id: str | None) -> list[PromptRecord]:
        """Every prompt (deleted ones too), with versions, runs and ratings."""
        records = []
        async with translated(), self._pool.acquire() as conn:
            prompts = await conn.fetch(
                "SELECT id, team_id, name, created_by, created_at, deleted_by, deleted_at FROM prompts"
                " WHERE ($1::text IS NULL OR team_id = $1) ORDER BY team_id, name, id",
                team_id,
            )
            for p in prompts:
                versions = []
                for v in await conn.fetch(f"{_VERSION} WHERE v.prompt_id = $1 ORDER BY v.version", p[0]):
                    runs = []
                    for r in await conn.fetch(f"{_RUN} WHERE version_id = $1 ORDER BY id", v[0]):
                        ratings = await conn.fetch(
                            "SELECT user_id, rating, comment, rated_at FROM prompt_ratings WHERE run_id = $1"
                            " ORDER BY user_id",
                            r[14],
                        )
                        runs.append(
                            run_from_row(
                                r, tuple(Rating(g[0], g[1], g[2], datetime.fromisoformat(g[3])) for g in ratings)
                            )
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
        async with translated(), self._pool.acquire() as conn, conn.transaction():
            for record in records:
                prompt_id = await conn.fetchval(
                    "SELECT id FROM prompts WHERE team_id = $1 AND name = $2 AND created_at = $3",
                    record.team_id, record.name, record.created_at.isoformat(),
                )  # fmt: skip
                if prompt_id is None:
                    live = await conn.fetchval(
                        "SELECT id FROM prompts WHERE team_id = $1 AND name = $2 AND deleted_at IS NULL",
                        record.team_id, record.name,
                    )  # fmt: skip
                    if record.deleted_at is None and live is not None:
                        raise ImportConflict(f"a different prompt named {record.name!r} already exists")
                    prompt_id = await conn.fetchval(
                        "INSERT INTO prompts (team_id, name, created_by, created_at, deleted_by, deleted_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                        record.team_id, record.name, record.created_by, record.created_at.isoformat(),
                        record.deleted_by, record.deleted_at.isoformat() if record.deleted_at else None,
                    )  # fmt: skip
                    added["prompts"] += 1
                for version, runs in record.versions:
                    version_id = await _import_version(conn, prompt_id, record.name, version, added)
                    for run in runs:
                        await _import_run(conn, version_id, run, added)
        return added


async def _import_version(conn: Any, prompt_id: int, name: str, version: PromptVersion, added: dict[str, int]) -> int:
    row = await conn.fetchrow(
        "SELECT id, template, system_prompt, model, temperature FROM prompt_versions"
        " WHERE prompt_id = $1 AND version = $2",
        prompt_id, version.version,
    )  # fmt: skip
    if row is not None:
        if tuple(row[1:]) != (version.template, version.system_prompt, version.model, version.temperature):
            raise ImportConflict(f"{name} v{version.version} differs from the stored v{version.version}")
        return int(row[0])
    added["versions"] += 1
    return int(
        await conn.fetchval(
            "INSERT INTO prompt_versions (prompt_id, version, template, system_prompt, model, temperature,"
            " author_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
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


async def _import_run(conn: Any, version_id: int, run: PromptRun, added: dict[str, int]) -> None:
    run_id = await conn.fetchval("SELECT id FROM prompt_runs WHERE uid = $1", run.uid)
    if run_id is None:
        params = run_params(run)
        run_id = await conn.fetchval(_INSERT_RUN, params[0], version_id, *params[2:])
        added["runs"] += 1
    for rating in run.ratings:
        inserted = await conn.fetchrow(
            "INSERT INTO prompt_ratings (run_id, user_id, rating, comment, rated_at) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            run_id, rating.user_id, rating.rating, rating.comment, rating.rated_at.isoformat(),
        )  # fmt: skip
        added["ratings"] += inserted is not None
