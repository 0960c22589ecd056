"""The Slack manifest as shipped (slack/manifest.yaml)."""

from __future__ import annotations

from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[2] / "slack" / "manifest.yaml"
