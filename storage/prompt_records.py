"""Records of the team's prompt library that cross the Store boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a saved prompt."""

    id: int
    team_id: str
    name: str
    version: int
    template: str
    system_prompt: str | None
    model: str | None
    temperature: float | None
    author_id: str
    created_at: datetime


@dataclass(frozen=True)
class PromptSummary:
    """A prompt in a listing: its latest version and how often it ran."""

    name: str
    latest_version: int
    created_by: str
    updated_at: datetime
    runs: int


@dataclass(frozen=True)
class Rating:
    """One person's rating of one run."""

    user_id: str
    rating: int
    comment: str
    rated_at: datetime


@dataclass(frozen=True)
class PromptRun:
    """One run of one version: inputs, parameters, output, tokens, cost, latency."""

    uid: str
    version_id: int
    team_id: str
    user_id: str
    inputs: dict[str, str]
    model: str
    temperature: float | None
    output: str
    error: str | None
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    latency_ms: int
    created_at: datetime
    id: int = 0
    ratings: tuple[Rating, ...] = field(default=())


@dataclass(frozen=True)
class VersionStats:
    """How one version has done: runs, average rating, cost and latency."""

    version: int
    runs: int
    rated: int
    avg_rating: float | None
    avg_cost_nanos: float
    avg_latency_ms: float


@dataclass(frozen=True)
class PromptRecord:
    """A whole prompt for export/import: its identity, versions and their runs."""

    team_id: str
    name: str
    created_by: str
    created_at: datetime
    deleted_by: str | None
    deleted_at: datetime | None
    versions: tuple[tuple[PromptVersion, tuple[PromptRun, ...]], ...]
