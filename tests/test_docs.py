"""The README stays a short front page whose links lead to docs that exist and name every command."""

from __future__ import annotations

import re
from pathlib import Path

from bot.commands.catalog import command_registry

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def relative_links(page: Path) -> list[str]:
    """The targets of the page's Markdown links that point into the repository (not the web)."""
    return [t for t in _LINK.findall(page.read_text("utf-8")) if not re.match(r"[a-z]+:", t)]


def test_every_link_in_the_readme_security_and_docs_leads_to_a_file_that_exists() -> None:
    pages = [REPO / "README.md", REPO / "SECURITY.md", *DOCS]
    broken = [f"{p.relative_to(REPO)} -> {t}" for p in pages for t in relative_links(p) if not (p.parent / t).exists()]
    assert not broken, f"links to nothing: {broken}"


def test_the_readme_links_every_page_under_docs() -> None:
    linked = {(REPO / t).resolve() for t in relative_links(REPO / "README.md")}
    assert DOCS, "docs/ has no pages"
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


def test_the_readme_is_a_front_page_a_newcomer_reads_in_minutes() -> None:
    # About five minutes of reading: the details live under docs/ by topic.
    words = len((REPO / "README.md").read_text("utf-8").split())
    assert words < 1200, f"README.md has {words} words; move the details to a page under docs/"


def test_every_command_is_named_in_the_readme_and_described_in_the_docs() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    docs = "\n".join(p.read_text("utf-8") for p in DOCS)
    names = [spec.name for spec in command_registry()]
    assert names, "the registry lists no commands"
    assert [n for n in names if f"/{n}" not in readme] == [], "commands missing from the README's table"
    assert [n for n in names if f"/{n}" not in docs] == [], "commands no page under docs/ describes"
