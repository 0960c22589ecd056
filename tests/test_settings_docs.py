"""docs/settings.md's table, the Settings class and .env.example name the same settings, each explained."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

REPO = Path(__file__).resolve().parents[1]
_SETTING_LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]+)=", re.MULTILINE)


def class_settings() -> set[str]:
    """The Settings fields' variables; a field read from many variables names their pattern (`env_pattern`),
    e.g. PROVIDER_<NAME>_API_KEY."""
    names = set()
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        names.add(str(extra.get("env_pattern", name.upper())))
    return names


def as_pattern(name: str) -> str:
    """A variable as the pattern it is one of (PROVIDER_GROQ_API_KEY: PROVIDER_<NAME>_API_KEY), else itself."""
    for pattern in class_settings() - {n.upper() for n in Settings.model_fields}:
        head, _, tail = pattern.partition("<NAME>")
        if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
            return pattern
    return name


def readme_settings() -> set[str]:
    """The variables in the first cell of each row of docs/settings.md's table."""
    section = (REPO / "docs" / "settings.md").read_text("utf-8")
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_<>]+)`", line.split("|")[1]))
    return names


def example_lines() -> list[str]:
    return (REPO / ".env.example").read_text("utf-8").splitlines()


def example_settings() -> list[str]:
    return [as_pattern(m.group(1)) for line in example_lines() if (m := _SETTING_LINE.match(line))]


def test_readme_settings_class_and_env_example_name_the_same_settings() -> None:
    in_class = class_settings()
    in_example = example_settings()
    assert sorted(set(in_example)) == sorted(in_class), "the Settings class and .env.example differ"
    assert sorted(readme_settings()) == sorted(in_class), "the Settings class and docs/settings.md's table differ"
    assert len(in_example) == len(set(in_example)), "a setting appears twice in .env.example"


def test_every_setting_in_env_example_has_its_own_comment_line_above_it() -> None:
    lines = example_lines()
    for i, line in enumerate(lines):
        if _SETTING_LINE.match(line):
            above = lines[i - 1] if i else ""
            assert above.startswith("# ") and not _SETTING_LINE.match(above), f"{line!r} has no comment line above it"


def test_a_setting_missing_from_the_example_is_noticed(tmp_path: Path) -> None:
    # The parsing above is what the test relies on: a commented default and an empty value both count.
    assert _SETTING_LINE.match("# PORT=3000") and _SETTING_LINE.match("OPENAI_API_KEY=")
    assert not _SETTING_LINE.match("# The HTTP port.")
