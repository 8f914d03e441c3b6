#!/usr/bin/env python3
"""The latest run of each benchmark beside the run before it (bench/history/*.jsonl).

    .venv/bin/python bench/compare.py [NAME...]

A figure with a spread is compared by its median; a change beyond the two runs' combined
min–max range is marked, since anything inside it is the machine's noise. Reports only; never
fails.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import HISTORY  # noqa: E402

SKIP = {"date", "machine", "commit", "runs", "min", "max"}


def figures(data, prefix: str = "") -> dict[str, tuple[float, float | None, float | None]]:
    """figure name -> (value, min, max), from nested results."""
    out: dict = {}
    if isinstance(data, dict):
        if "median" in data and isinstance(data["median"], (int, float)):
            return {prefix: (data["median"], data.get("min"), data.get("max"))}
        for key, value in data.items():
            if key not in SKIP:
                out.update(figures(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(figures(value, f"{prefix}[{i}]"))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix] = (data, None, None)
    return out


def rows(name: str) -> list[list[str]]:
    lines = [json.loads(x) for x in (HISTORY / f"{name}.jsonl").read_text().splitlines() if x.strip()]
    if not lines:
        return []
    now = figures(lines[-1])
    before = figures(lines[-2]) if len(lines) > 1 else {}
    out = []
    for figure, (value, lo, hi) in now.items():
        old = before.get(figure)
        change, mark = "", ""
        if old and old[0]:
            change = f"{(value - old[0]) / abs(old[0]) * 100:+.0f}%"
            if lo is not None and old[1] is not None and (lo > old[2] or hi < old[1]):
                mark = " *"  # the ranges do not overlap: not noise
        out.append([name, figure, f"{value:g}", f"{old[0]:g}" if old else "—", change + mark])
    return out


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HISTORY.glob("*.jsonl"))
    table = [["benchmark", "figure", "this run", "previous", "change"]]
    for name in names:
        if (HISTORY / f"{name}.jsonl").exists():
            table += rows(name)
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print("* the two runs' min-max ranges do not overlap")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
