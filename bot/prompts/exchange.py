"""Importing an exported prompt library: validated with pydantic before anything is written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import BadCommand
from bot.prompts.experiments import EXPORT_FORMAT
from storage.prompt_records import PromptRecord, PromptRun, PromptVersion, Rating


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RatingIn(_Strict):
    user_id: str
    rating: int = Field(ge=1, le=5)
    comment: str = ""
    rated_at: datetime


class RunIn(_Strict):
    uid: str = Field(min_length=8)
    team_id: str
    user_id: str
    inputs: dict[str, str]
    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    output: str
    error: str | None = None
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cost_nanos: int = Field(ge=0)
    latency_ms: int = Field(ge=0)
    created_at: datetime
    ratings: list[RatingIn] = []


class VersionIn(_Strict):
    version: int = Field(ge=1)
    template: str = Field(min_length=1)
    system_prompt: str | None = None
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    author_id: str
    created_at: datetime
    runs: list[RunIn] = []


class PromptIn(_Strict):
    team_id: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    created_by: str
    created_at: datetime
    deleted_by: str | None = None
    deleted_at: datetime | None = None
    versions: list[VersionIn] = Field(min_length=1)


class LibraryIn(_Strict):
    format: str
    prompts: list[PromptIn]


def parse_export(document: Any) -> list[PromptRecord]:
    """Validate an export document and turn it into records; a clear error says what is wrong where."""
    try:
        library = LibraryIn.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadCommand(
            f"Not a valid prompt export: {where}: {first['msg']} ({exc.error_count()} problem(s))."
        ) from None
    if library.format != EXPORT_FORMAT:
        raise BadCommand(f"Unknown export format {library.format!r}; expected {EXPORT_FORMAT!r}.")
    records = []
    for p in library.prompts:
        numbers = [v.version for v in p.versions]
        if len(set(numbers)) != len(numbers):
            raise BadCommand(f"Not a valid prompt export: {p.name} lists a version twice.")
        versions = tuple(
            (
                PromptVersion(0, p.team_id, p.name, v.version, v.template, v.system_prompt, v.model, v.temperature,
                              v.author_id, v.created_at),
                tuple(
                    PromptRun(
                        uid=r.uid, version_id=0, team_id=r.team_id, user_id=r.user_id, inputs=r.inputs, model=r.model,
                        temperature=r.temperature, output=r.output, error=r.error, input_tokens=r.input_tokens,
                        output_tokens=r.output_tokens, cost_nanos=r.cost_nanos, latency_ms=r.latency_ms,
                        created_at=r.created_at,
                        ratings=tuple(Rating(g.user_id, g.rating, g.comment, g.rated_at) for g in r.ratings),
                    )
                    for r in v.runs
                ),
            )
            for v in p.versions
        )  # fmt: skip
        records.append(
            PromptRecord(p.team_id, p.name, p.created_by, p.created_at, p.deleted_by, p.deleted_at, versions)
        )
    return records
