"""The benchmarks still run against the current code (their figures are not checked here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import context_window, turn_overhead
from benchmarks.__main__ import table


async def test_the_turn_and_window_benchmarks_run_on_the_current_schema(tmp_path: Path) -> None:
    assert len(await turn_overhead.raw_turns(tmp_path, 3)) == 3
    assert len(await turn_overhead.engine_turns(tmp_path, 3)) == 3
    figures, window = await context_window.measure(tmp_path, 100)
    assert window == context_window.BUDGET // context_window.TOKENS_PER_MESSAGE and figures["n"] > 0


def test_the_report_table_renders_from_a_partial_report() -> None:
    report = {"when": "2026-11-24T00:00:00+00:00", "cores": 2, "machine": "x86_64", "python": "3.11",
              "context_window": {"ratio_p50": 1.0}}  # fmt: skip
    assert "| context build, 100,000 vs 100 stored messages (p50 ratio) | 1.0 | ≤ 1.5 |" in table(report)
