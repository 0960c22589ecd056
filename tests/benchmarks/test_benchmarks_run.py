"""The benchmarks still run against the current code (their figures are not checked here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import adapters, context_window, memory_search, turn_overhead
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


async def test_the_memory_search_benchmark_finds_what_numpy_finds(tmp_path: Path) -> None:
    result = await memory_search.measure(tmp_path, 2_000, None)  # asserts equality with the in-RAM search itself
    assert result["vectors"] == 2_000 and result["sqlite"]["p50_ms"] > 0


async def test_the_adapters_benchmark_sees_the_first_text_and_the_edits() -> None:
    figures = await adapters.discord_edits()
    assert figures["calls_per_reply"] >= 2 and figures["first_text_ms"] > 0


async def test_the_memory_quality_benchmark_runs_through_memory(tmp_path: Path) -> None:
    from benchmarks import memory_quality

    result = await memory_quality.measure(memory_quality.BagOfWords(), "bag-of-words", 512, tmp_path)
    assert 0 <= result["search"]["hit_at_5"] <= 1 and result["recall"]["mrr_at_10"] > 0
    assert "min_similarity" in result["proposed_search_floor"]


async def test_the_concurrency_benchmark_runs_steady_turns_with_budgets_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import concurrency

    monkeypatch.setattr(concurrency, "CONVERSATIONS", 5)
    monkeypatch.setattr(concurrency, "MODEL_SECONDS", 0.01)
    figures = await concurrency.measure(f"sqlite:///{tmp_path / 'steady.sqlite3'}", steady=True)
    assert figures["many"] > 0 and figures["cpu_ms_per_turn"] > 0
    floor = await concurrency.measure_raw(tmp_path)  # the same statements with none of our code
    assert floor["many"] >= concurrency.MODEL_SECONDS and floor["cpu_ms_per_turn"] > 0
    grouped = await concurrency.measure_raw(tmp_path, grouped=True)  # the same, two trips a turn
    assert grouped["many"] >= concurrency.MODEL_SECONDS and grouped["cpu_ms_per_turn"] > 0


async def test_an_empty_test_postgres_url_means_no_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.harness import stores

    monkeypatch.setattr(stores, "ADMIN_URL", "")
    assert await stores.postgres_reachable() == "TEST_POSTGRES_URL is empty: no PostgreSQL"
