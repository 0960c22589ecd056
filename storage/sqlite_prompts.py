"""The team's prompt library on SQLite: prompts, versions, runs and ratings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from storage.prompt_records import (
    PromptRecord,
    PromptRun,
    PromptSummary,
    PromptVersion,
    Rating,
    VersionStats,
)

if TYPE_CHECKING:
    from storage.sqlite.database import SQLiteDatabase

_VERSION = (
    "SELECT v.id, p.team_id, p.name, v.version, v.template, v.system_prompt, v.model, v.temperature,"
    " v.author_id, v.created_at FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id"
)
_RUN = (
    "SELECT uid, version_id, team_id, user_id, inputs, model, temperature, output, error, input_tokens,"
    " output_tokens, cost_nanos, latency_ms, created_at, id FROM prompt_runs"
)


class ImportConflict(Exception):
    """An imported version differs from the stored version of the same number."""


class SQLitePromptLibrary:
    """Versioned prompts per team. Versions are immutable; deleting a prompt keeps its runs."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def save_version(
        self,
        team_id: str,
        name: str,
        template: str,
        *,
        system_prompt: str | None,
        model: str | None,
        temperature: float | None,
        author_id: str,
        now: datetime,
    ) -> PromptVersion:
        """Add the next version of `name` (creating the prompt at v1)."""
        async with self._db.raw_transaction() as db:
            prompt_id = await _live_prompt_id(db, team_id, name)
            if prompt_id is None:
                [(prompt_id,)] = await db.execute_fetchall(
                    "INSERT INTO prompts (team_id, name, created_by, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                    (team_id, name, author_id, now.isoformat()),
                )
            [(version_id,)] = await db.execute_fetchall(
                "INSERT INTO prompt_versions (prompt_id, version, template, system_prompt, model, temperature,"
                " author_id, created_at) VALUES (?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions"
                " WHERE prompt_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                (prompt_id, template, system_prompt, model, temperature, author_id, now.isoformat()),
            )
            [row] = await db.execute_fetchall(f"{_VERSION} WHERE v.id = ?", (version_id,))
        return version_from_row(row)

    async def version(self, team_id: str, name: str, number: int | None = None) -> PromptVersion | None:
        """Version `number` of a live prompt, or its latest."""
        rows = await self._db.fetchall(
            f"{_VERSION} WHERE p.team_id = ? AND p.name = ? AND p.deleted_at IS NULL"
            " AND (? IS NULL OR v.version = ?) ORDER BY v.version DESC LIMIT 1",
            (team_id, name, number, number),
        )
        return version_from_row(rows[0]) if rows else None

    async def versions(self, team_id: str, name: str) -> list[PromptVersion]:
        """Every version of a live prompt, oldest first."""
        rows = await self._db.fetchall(
            f"{_VERSION} WHERE p.team_id = ? AND p.name = ? AND p.deleted_at IS NULL ORDER BY v.version",
            (team_id, name),
        )
        return [version_from_row(row) for row in rows]

    async def summaries(self, team_id: str, contains: str | None = None) -> list[PromptSummary]:
        """The team's live prompts, by name; `contains` filters names (case-insensitive)."""
        rows = await self._db.fetchall(
            "SELECT p.name, MAX(v.version), p.created_by, MAX(v.created_at),"
            " (SELECT count(*) FROM prompt_runs r JOIN prompt_versions rv ON rv.id = r.version_id"
            "  WHERE rv.prompt_id = p.id)"
            " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id"
            " WHERE p.team_id = ? AND p.deleted_at IS NULL AND (? IS NULL OR instr(lower(p.name), lower(?)) > 0)"
            " GROUP BY p.id ORDER BY p.name",
            (team_id, contains, contains),
        )
        return [PromptSummary(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4]) for r in rows]

    async def creator(self, team_id: str, name: str) -> str | None:
        """Who created a live prompt."""
        rows = await self._db.fetchall(
            "SELECT created_by FROM prompts WHERE team_id = ? AND name = ? AND deleted_at IS NULL", (team_id, name)
        )
        return str(rows[0][0]) if rows else None

    async def delete(self, team_id: str, name: str, *, by: str, now: datetime) -> bool:
        """Mark a prompt deleted: its name is free again; its versions and runs stay readable."""
        rows = await self._db.fetchall(
            "UPDATE prompts SET deleted_by = ?, deleted_at = ? WHERE team_id = ? AND name = ? AND deleted_at IS NULL"
            " RETURNING id",
            (by, now.isoformat(), team_id, name),
        )
        return bool(rows)

    async def add_run(self, run: PromptRun) -> int:
        """Record one run; returns its id (what /prompt rate takes)."""
        [(run_id,)] = await self._db.fetchall(
            "INSERT INTO prompt_runs (uid, version_id, team_id, user_id, inputs, model, temperature, output, error,"
            " input_tokens, output_tokens, cost_nanos, latency_ms, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            run_params(run),
        )
        return int(run_id)

    async def run(self, team_id: str, run_id: int) -> PromptRun | None:
        """One run of the team's."""
        rows = await self._db.fetchall(f"{_RUN} WHERE id = ? AND team_id = ?", (run_id, team_id))
        return run_from_row(rows[0]) if rows else None

    async def rate(self, team_id: str, run_id: int, user_id: str, rating: int, comment: str, now: datetime) -> bool:
        """Rate a run of the team's (rating again replaces your earlier rating); False if no such run."""
        rows = await self._db.fetchall(
            "INSERT INTO prompt_ratings (run_id, user_id, rating, comment, rated_at)"
            " SELECT id, ?, ?, ?, ? FROM prompt_runs WHERE id = ? AND team_id = ?"
            " ON CONFLICT (run_id, user_id) DO UPDATE SET rating = excluded.rating, comment = excluded.comment,"
            " rated_at = excluded.rated_at RETURNING run_id",
            (user_id, rating, comment, now.isoformat(), run_id, team_id),
        )
        return bool(rows)

    async def stats(self, team_id: str, name: str) -> list[VersionStats]:
        """Per version of a live prompt: runs, ratings, average cost and latency of successful runs."""
        rows = await self._db.fetchall(
            "SELECT v.version, count(r.id),"
            " (SELECT count(*) FROM prompt_ratings g JOIN prompt_runs gr ON gr.id = g.run_id"
            "  WHERE gr.version_id = v.id),"
            " (SELECT avg(g.rating) FROM prompt_ratings g JOIN prompt_runs gr ON gr.id = g.run_id"
            "  WHERE gr.version_id = v.id),"
            " COALESCE(avg(r.cost_nanos), 0), COALESCE(avg(r.latency_ms), 0)"
            " FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id"
            " LEFT JOIN prompt_runs r ON r.version_id = v.id AND r.error IS NULL"
            " WHERE p.team_id = ? AND p.name = ? AND p.deleted_at IS NULL GROUP BY v.id",
            (team_id, name),
        )
        return [VersionStats(*row) for row in rows]

    async def export(self, team_id: str | None) -> list[PromptRecord]:
        """Every prompt (deleted ones too), with versions, runs and ratings, for one team or all."""
        prompts = await self._db.fetchall(
            "SELECT id, team_id, name, created_by, created_at, deleted_by, deleted_at FROM prompts"
            " WHERE (? IS NULL OR team_id = ?) ORDER BY team_id, name, id",
            (team_id, team_id),
        )
        records = []
        for pid, team, name, created_by, created_at, deleted_by, deleted_at in prompts:
            versions = []
            for vrow in await self._db.fetchall(f"{_VERSION} WHERE v.prompt_id = ? ORDER BY v.version", (pid,)):
                runs = []
                for rrow in await self._db.fetchall(f"{_RUN} WHERE version_id = ? ORDER BY id", (vrow[0],)):
                    ratings = await self._db.fetchall(
                        "SELECT user_id, rating, comment, rated_at FROM prompt_ratings WHERE run_id = ?"
                        " ORDER BY user_id",
                        (rrow[14],),
                    )
                    runs.append(
                        run_from_row(rrow, tuple(Rating(u, r, c, datetime.fromisoformat(t)) for u, r, c, t in ratings))
                    )
                versions.append((version_from_row(vrow), tuple(runs)))
            records.append(
                PromptRecord(
                    team,
                    name,
                    created_by,
                    datetime.fromisoformat(created_at),
                    deleted_by,
                    datetime.fromisoformat(deleted_at) if deleted_at else None,
                    tuple(versions),
                )
            )
        return records

    async def import_(self, records: Sequence[PromptRecord]) -> dict[str, int]:
        """Add what is missing, in one transaction; a version that differs from the stored one aborts it all."""
        added = {"prompts": 0, "versions": 0, "runs": 0, "ratings": 0}
        async with self._db.raw_transaction() as db:
            for record in records:
                rows = list(
                    await db.execute_fetchall(
                        "SELECT id FROM prompts WHERE team_id = ? AND name = ? AND created_at = ?",
                        (record.team_id, record.name, record.created_at.isoformat()),
                    )
                )
                if rows:
                    prompt_id = rows[0][0]
                else:
                    if record.deleted_at is None and await _live_prompt_id(db, record.team_id, record.name):
                        raise ImportConflict(f"a different prompt named {record.name!r} already exists")
                    [(prompt_id,)] = await db.execute_fetchall(
                        "INSERT INTO prompts (team_id, name, created_by, created_at, deleted_by, deleted_at)"
                        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                        (record.team_id, record.name, record.created_by, record.created_at.isoformat(),
                         record.deleted_by, record.deleted_at.isoformat() if record.deleted_at else None),
                    )  # fmt: skip
                    added["prompts"] += 1
                for version, runs in record.versions:
                    version_id = await self._import_version(db, prompt_id, record.name, version, added)
                    for run in runs:
                        await self._import_run(db, version_id, run, added)
        return added

    @staticmethod
    async def _import_version(
        db: aiosqlite.Connection, prompt_id: int, name: str, version: PromptVersion, added: dict[str, int]
    ) -> int:
        rows = list(
            await db.execute_fetchall(
                "SELECT id, template, system_prompt, model, temperature FROM prompt_versions"
                " WHERE prompt_id = ? AND version = ?",
                (prompt_id, version.version),
            )
        )
        if rows:
            if tuple(rows[0][1:]) != (version.template, version.system_prompt, version.model, version.temperature):
                raise ImportConflict(f"{name} v{version.version} differs from the stored v{version.version}")
            return int(rows[0][0])
        [(version_id,)] = await db.execute_fetchall(
            "INSERT INTO prompt_versions (prompt_id, version, template, system_prompt, model, temperature,"
            " author_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (prompt_id, version.version, version.template, version.system_prompt, version.model,
             version.temperature, version.author_id, version.created_at.isoformat()),
        )  # fmt: skip
        added["versions"] += 1
        return int(version_id)

    @staticmethod
    async def _import_run(db: aiosqlite.Connection, version_id: int, run: PromptRun, added: dict[str, int]) -> None:
        rows = list(await db.execute_fetchall("SELECT id FROM prompt_runs WHERE uid = ?", (run.uid,)))
        if rows:
            run_id = rows[0][0]
        else:
            params = run_params(run)
            [(run_id,)] = await db.execute_fetchall(
                "INSERT INTO prompt_runs (uid, version_id, team_id, user_id, inputs, model, temperature, output,"
                " error, input_tokens, output_tokens, cost_nanos, latency_ms, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (params[0], version_id, *params[2:]),
            )
            added["runs"] += 1
        for rating in run.ratings:
            inserted = list(
                await db.execute_fetchall(
                    "INSERT INTO prompt_ratings (run_id, user_id, rating, comment, rated_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING RETURNING 1",
                    (run_id, rating.user_id, rating.rating, rating.comment, rating.rated_at.isoformat()),
                )
            )
            added["ratings"] += len(inserted)


async def _live_prompt_id(db: aiosqlite.Connection, team_id: str, name: str) -> int | None:
    rows = list(
        await db.execute_fetchall(
            "SELECT id FROM prompts WHERE team_id = ? AND name = ? AND deleted_at IS NULL", (team_id, name)
        )
    )
    return int(rows[0][0]) if rows else None


def version_from_row(row: Any) -> PromptVersion:
    """A PromptVersion from a `_VERSION` row (SQLite or PostgreSQL)."""
    return PromptVersion(
        id=row[0], team_id=row[1], name=row[2], version=row[3], template=row[4], system_prompt=row[5],
        model=row[6], temperature=row[7], author_id=row[8], created_at=datetime.fromisoformat(row[9]),
    )  # fmt: skip


def run_from_row(row: Any, ratings: tuple[Rating, ...] = ()) -> PromptRun:
    """A PromptRun from a `_RUN` row (SQLite or PostgreSQL)."""
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
