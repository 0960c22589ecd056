"""The fixed time the store contract tests run at."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
