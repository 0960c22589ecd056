"""Run every benchmark (or those named): print one JSON document, save it, and refresh the table
between the markers in benchmarks/README.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    adapters,
    concurrency,
    context_window,
    footprint,
    memory_quality,
    memory_search,
    reservations,
    turn_overhead,
    vision_scaling,
)
from bot import event_loop

BENCHMARKS: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "turn_overhead": turn_overhead.run,
    "context_window": context_window.run,
    "concurrency": concurrency.run,
    "reservations": reservations.run,
    "footprint": footprint.run,
    "adapters": adapters.run,
    "memory_search": memory_search.run,
    "memory_quality": memory_quality.run,
    "vision_scaling": vision_scaling.run,
}
HERE = Path(__file__).resolve().parent
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


async def main(names: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
    }
    for name in names:
        report[name] = await BENCHMARKS[name]()
        report[name]["measured"] = report["when"][:10]
    return report


def table(report: dict[str, Any]) -> str:
    """The Markdown table of the headline figures."""
    rows = [f"Last run {report['when'][:10]} ({report['cores']} cores, {report['machine']}, Python {report['python']});"
            " each benchmark's date is `measured` in latest.json:", "",
            "| figure | value | goal |", "| --- | --- | --- |"]  # fmt: skip

    def add(name: str, value: str, goal: str) -> None:
        rows.append(f"| {name} | {value} | {goal} |")

    if t := report.get("turn_overhead"):
        add("engine overhead per turn vs raw aiosqlite (p50 ratio)",
            f"{t['ratio_p50']} (engine p50 {t['engine']['p50_us']:.0f} µs, raw {t['raw_aiosqlite']['p50_us']:.0f} µs)",
            "≤ 2")  # fmt: skip
        if "cpu_ratio" in t:
            cpu = f"engine {t['engine_cpu_us_per_turn']:.0f} µs, raw {t['raw_cpu_us_per_turn']:.0f} µs"
            add(
                "engine CPU per turn vs the raw driver running the same statements",
                f"{t['cpu_ratio']} ({cpu})",
                "≤ 1.5",
            )
        if "recall_adds_p50_us" in t:
            add("what recall adds to a turn of a long conversation (p50, embeddings answering at once)",
                f"{t['recall_adds_p50_us']:.0f} µs", "")  # fmt: skip
    if c := report.get("context_window"):
        add("context build, 100,000 vs 100 stored messages (p50 ratio)", str(c["ratio_p50"]), "≤ 1.5")
    if c := report.get("concurrency"):
        add(f"{c['conversations']} conversations at once, {c['model_seconds'] * 1000:.0f} ms model (wall vs one)",
            f"{c['ratio']} ({c['all_at_once_s']} s vs {c['one_request_s']} s)", "≤ 1.3")  # fmt: skip
        if "postgres_ratio" in c:
            shown = f"{c['postgres_ratio']} ({c['postgres_all_at_once_s']} s vs {c['postgres_one_request_s']} s)"
            add("the same on PostgreSQL (one process, pool of 10)", shown, "≤ 2")
        for prefix, where in (("running_", "SQLite"), ("postgres_running_", "PostgreSQL")):
            if f"{prefix}ratio" in c:
                add(f"200 more first turns at once, in a process that has served a burst, {where} (wall vs one;"
                    " CPU per turn)", f"{c[f'{prefix}ratio']} ({c[f'{prefix}cpu_ms_per_turn']} ms)", "")  # fmt: skip
        for prefix, where in (("steady_", "SQLite"), ("postgres_steady_", "PostgreSQL")):
            if f"{prefix}ratio" in c:
                add(f"the 4th turn of {c['conversations']} conversations at once, budgets set, {where} (wall vs one;"
                    " CPU per turn)", f"{c[f'{prefix}ratio']} ({c[f'{prefix}all_at_once_s']} s vs"
                    f" {c[f'{prefix}one_request_s']} s; {c[f'{prefix}cpu_ms_per_turn']} ms)",
                    "≤ 1.3" if where == "SQLite" else "≤ 2")  # fmt: skip
        if "raw_ratio" in c:
            add("the same burst's statements straight on aiosqlite, none of our code (the floor under SQLite's)",
                f"{c['raw_ratio']} ({c['raw_all_at_once_s']} s vs {c['raw_one_request_s']} s;"
                f" {c['raw_cpu_ms_per_turn']} ms)", "")  # fmt: skip
        if "raw_grouped_ratio" in c:
            add("the same, grouped as the engine groups them (two trips to aiosqlite's thread a turn)",
                f"{c['raw_grouped_ratio']} ({c['raw_grouped_all_at_once_s']} s vs {c['raw_grouped_one_request_s']} s;"
                f" {c['raw_grouped_cpu_ms_per_turn']} ms)", "")  # fmt: skip
    if r := report.get("reservations"):
        add("reserve+settle pairs per second, 500 concurrent (SQLite)", f"{r['reserve_settle_per_s']:,}", "≥ 2,000")
        if "postgres_reserve_settle_per_s" in r:
            add("the same on PostgreSQL (one pool of 10)", f"{r['postgres_reserve_settle_per_s']:,}", "")
    if f := report.get("footprint"):
        add(f"idle RSS with {f['stored_conversations']:,} stored conversations",
            f"{f['idle_rss_mb']} MB (bare Python {f['bare_python_rss_mb']} MB)", "≤ 110 MB")  # fmt: skip
        add(
            "cold start of `python -m bot --help`",
            f"{f['cold_start_help_s']} s (bare Python {f['bare_python_start_s']} s)",
            "",
        )
    if a := report.get("adapters"):
        labels = {"slack_native_stream": "Slack, native streaming", "slack_chat_update": "Slack, chat.update",
                  "discord_edits": "Discord, edits"}  # fmt: skip
        for name, label in labels.items():
            if f := a.get(name):
                shown = f"{f['first_text_ms']} ms ({f['first_text_ratio']}×; plain post {f['plain_post_ms']} ms)"
                add(f"{label}: first text after the first token (vs a plain post's delivery)", shown, "")
                goal = "≤ 2 a second" if name == "slack_native_stream" else "≤ 1 a second"
                add(f"{label}: most updates in one second", str(f["max_updates_in_1s"]), goal)
    if m := report.get("memory_search"):
        for size in m["sizes"]:
            for backend in ("sqlite", "postgres"):
                if f := size.get(backend):
                    add(f"/search over {size['vectors']:,} vectors ({size['dims']} dims), {backend}: p50",
                        f"{f['p50_ms']:,} ms ({f['us_per_vector']} µs a vector; in-RAM numpy {f['in_ram_p50_ms']} ms;"
                        f" peak {f['peak_alloc_mb']} MB vs a {f['in_ram_matrix_mb']:,} MB matrix)", "")  # fmt: skip
    if q := report.get("memory_quality"):
        for name in ("minilm", "bag_of_words"):
            f = q.get(name)
            if isinstance(f, dict):
                add(f"memory quality, {f['model']}: /search hit@5 · MRR; recall hit@5 · brought into context",
                    f"{f['search']['hit_at_5']} · {f['search']['mrr_at_10']}; {f['recall']['hit_at_5']} · "
                    f"{f['recall']['brought_into_context']} (floor {f['proposed_search_floor']['min_similarity']})",
                    "/search hit@5 ≥ 0.95" if name == "minilm" else "")  # fmt: skip
            elif f:
                add(f"memory quality, {name}", str(f), "")
    if v := report.get("vision_scaling"):
        for model in ("gpt-4.1-mini", "gpt-4o"):
            if f := v.get(model):
                add(f"a 4032x3024 JPEG ({v['source']['bytes'] / 1e6:.1f} MB) as {model} reads it",
                    f"{f['sent_pixels']}, {f['sent_bytes'] / 1e6:.2f} MB ({f['bytes_saved_share']:.0%} fewer bytes),"
                    f" {f['tokens']:,} tokens, prepared in {f['prepare_ms_p50']:,} ms", "")  # fmt: skip
    return "\n".join(rows)


def write_readme(report: dict[str, Any]) -> None:
    readme = HERE / "README.md"
    text = readme.read_text("utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{START}\n{table(report)}\n{END}{tail}", "utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"which to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    result = event_loop.run(main(args.names or list(BENCHMARKS)))  # the loop `python -m bot` runs on
    json.dump(result, sys.stdout, indent=2)
    print()
    # The latest figures of every benchmark: those just run replace their earlier ones.
    latest_file = HERE / "latest.json"
    latest = json.loads(latest_file.read_text("utf-8")) if latest_file.exists() else {}
    latest.update(result)
    latest_file.write_text(json.dumps(latest, indent=2) + "\n", "utf-8")
    write_readme(latest)
