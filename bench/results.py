"""Where benchmark runs leave their figures, and how they report their spread.

- ``bench/results/<name>.json``: the latest run (git-ignored: a scratch copy).
- ``bench/history/<name>.jsonl``: every run, one JSON line each, with the commit and the machine,
  kept on the machine that ran it (git-ignored: figures from different machines do not compare;
  docs/benchmarks.md holds the ones we publish). A change that slows a path shows up against the
  runs before it on the same machine.
- ``spread(values)``: a figure is the median of its runs with min and max (issue #17: one run
  cannot tell noise from a cost).
``bench/compare.py`` prints the latest run of each benchmark beside the one before it.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "bench" / "results"
HISTORY = ROOT / "bench" / "history"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))  # runs per figure (make bench: 3)


def stamp() -> dict:
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "commit": commit()}


def machine() -> dict:
    """What a figure depends on: CPU model and cores, kernel, Open vSwitch and its datapath."""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        ovs = subprocess.run(["ovs-vsctl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        ovs = ""
    datapath = "system (kernel module)" if Path("/sys/module/openvswitch").exists() else "netdev (userspace)"
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(), "ovs": ovs.split()[-1] if ovs else "",
            "datapath": datapath}


def commit() -> str:
    """The checkout's commit, with ``-dirty`` when tracked files differ from it (the history
    files the benchmarks append to aside): a figure must not be credited to code it did not run."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--",
                                  ".", ":!bench/history"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
    return f"{head}-dirty" if head and changed else head


def spread(values: list[float], digits: int = 3) -> dict:
    """median, min and max of a figure's runs."""
    if not values:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "runs": len(values)}


def text(s: dict, unit: str = "") -> str:
    """``median (min–max, n runs)`` for a spread."""
    if s.get("median") is None:
        return "—"
    return f"{s['median']:g}{unit} ({s['min']:g}–{s['max']:g}, {s['runs']} runs)"


def save(name: str, results: dict) -> Path:
    DIRECTORY.mkdir(exist_ok=True)
    path = DIRECTORY / f"{name}.json"
    path.write_text(json.dumps(results, indent=1))
    HISTORY.mkdir(exist_ok=True)
    with open(HISTORY / f"{name}.jsonl", "a") as f:
        f.write(json.dumps(results, sort_keys=True) + "\n")
    return path
