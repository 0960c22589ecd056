"""Settings read as a deployment reads them: from a .env file and the environment, the environment winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, load_settings


def settings_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dotenv: str, **environment: str) -> Settings:
    """The settings of a .env holding `dotenv` (its lines) and an environment holding `environment`."""
    env_file = tmp_path / ".env"
    env_file.write_text(dotenv, "utf-8")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_settings(env_file=env_file)
