"""The tests mirror the product tree (tests/bot/…, tests/adapters/…, tests/storage/…) and share through
tests/harness/ and tests/fakes/, never by importing one another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# Tests of the repository as a whole (its docs, its settings table, this layout) sit at the top of tests/.
WHOLE_REPOSITORY = {"test_docs.py", "test_settings_docs.py", "test_test_layout.py"}
SHARED = {"fakes", "harness"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions included)."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_test_module_imports_another_test_module() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 10, "the scan found no test files"
    offenders = [
        f"{path.relative_to(TESTS)} imports {module}"
        for path in files
        for module in imported_modules(path)
        if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith(("test_", "conftest"))
    ]
    assert offenders == [], "move what they share into tests/harness/ (conftest.py shares fixtures, not imports)"


def test_the_scan_sees_an_import_of_a_test_module(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text("def f():\n    from tests.test_slack import until\n", "utf-8")
    assert "tests.test_slack" in imported_modules(sample)
    sample.write_text("from tests.conftest import message\n", "utf-8")
    assert "tests.conftest" in imported_modules(sample)


def test_each_test_module_sits_under_the_folder_it_tests() -> None:
    misplaced = []
    for path in sorted(TESTS.rglob("test_*.py")):
        folder = path.parent.relative_to(TESTS)
        if folder.parts and folder.parts[0] in SHARED:
            continue
        if not folder.parts:
            if path.name not in WHOLE_REPOSITORY:
                misplaced.append(f"{path.name}: move it under tests/<the product folder it tests>/")
        elif not (REPO / folder).is_dir():
            misplaced.append(f"{path.relative_to(TESTS)}: there is no {folder}/ in the product")
    assert misplaced == []


def test_each_test_folder_is_a_package() -> None:
    """Two folders may each hold a test_security.py: pytest tells them apart by their package."""
    folders = {path.parent for path in TESTS.rglob("*.py")}
    assert [str(f.relative_to(REPO)) for f in sorted(folders) if not (f / "__init__.py").exists()] == []
