"""Run every benchmark (or those named) and print the figures as one JSON document."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from benchmarks import context_window, reservations, turn_overhead

BENCHMARKS: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "turn_overhead": turn_overhead.run,
    "context_window": context_window.run,
    "reservations": reservations.run,
}


async def main(names: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    for name in names:
        report[name] = await BENCHMARKS[name]()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"which to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    json.dump(asyncio.run(main(args.names or list(BENCHMARKS))), sys.stdout, indent=2)
    print()
