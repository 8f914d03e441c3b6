#!/usr/bin/env python3
"""Does graceful termination delay ``down``? (issue #11's benchmark). Measures; never fails.

    sudo .venv/bin/python bench/termination.py [--runs 3]

The same cluster (3 nodes x 10 busybox pods) twice per run: plain, and with 10 more pods whose
preStop hook sleeps 60 s under a 120 s grace period. ``down`` abandons hooks and grace periods
as the kubelet's shutdown does, so the two should take the same time; the ratio says whether
they do. Up is timed too (the hooked pods are ordinary until deleted). Everything stays inside
the clusters' own namespaces; each run is bounded by the CLI's timeouts.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from bench.scale import timed, write_spec  # noqa: E402

HOOKED = """    - apiVersion: apps/v1
      kind: Deployment
      metadata: {name: hooked}
      spec:
        replicas: 10
        selector: {matchLabels: {app: hooked}}
        template:
          metadata: {labels: {app: hooked}}
          spec:
            terminationGracePeriodSeconds: 120
            containers:
              - name: c
                image: busybox
                lifecycle: {preStop: {exec: {command: [sleep, "60"]}}}
"""


def up_down(spec: Path) -> tuple[float, float]:
    up = timed("up", str(spec), "--detach", "--timeout", "300")
    name = spec.stem
    down = timed("--cluster", name, "down", timeout=300)
    return up, down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="k8semu-bench-"))
    plain = write_spec(work, "plain", 3, 30)
    hooked = write_spec(work, "hooked", 3, 30)
    hooked.write_text(hooked.read_text() + HOOKED)
    rows = {"plain": [], "hooked": []}
    for _ in range(args.runs):  # alternate, so both see the same machine state
        rows["plain"].append(up_down(plain))
        rows["hooked"].append(up_down(hooked))
    results: dict = stamp()
    for key, runs in rows.items():
        results[key] = {"up_s": spread([u for u, _ in runs], 2), "down_s": spread([d for _, d in runs], 2)}
    results["down_ratio_hooked_to_plain"] = spread([h[1] / p[1] for p, h in zip(rows["plain"], rows["hooked"])], 2)
    for key in rows:
        print(f"{key}: up {text(results[key]['up_s'], ' s')}, down {text(results[key]['down_s'], ' s')}")
    print(f"down with 10 pods in a 60 s preStop hook / without: {text(results['down_ratio_hooked_to_plain'])}")
    save("termination", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
