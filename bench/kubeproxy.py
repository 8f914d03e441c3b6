#!/usr/bin/env python3
"""kube-proxy iptables mode: what its rules cost to write and to load (issue: the course's data
planes). Measures and reports.

    sudo .venv/bin/python bench/kubeproxy.py [--services 100 1000 5000] [--runs 3]

For N ClusterIP Services of 3 endpoints each (and, as kube-proxy writes them, a NodePort on every
tenth), the time to render one node's rules (emulator/kubeproxy/iptables.py) and the time
``iptables-restore --noflush`` takes to load them into an empty network namespace made for the
run (named free, removed after; nothing of the machine's own tables is touched), which is what a
kube-proxy sync costs in the kernel. kube-proxy's nftables mode exists because this grows with
the number of Services; each figure is reported with its ratio to the smallest N, measured in
the same run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from emulator.kubeproxy import iptables  # noqa: E402
from emulator.model.netview import EndpointView, ServicePortView  # noqa: E402


def services(n: int) -> list[ServicePortView]:
    out = []
    for i in range(n):
        eps = tuple(EndpointView(f"10.244.{(3 * i + k) // 250 % 250}.{(3 * i + k) % 250 + 2}", 8080, f"worker-{k}")
                    for k in range(3))
        out.append(ServicePortView(i, f"ns{i % 50}", f"svc{i}", "http", "TCP", f"10.{96 + i // 65000}.{i // 250 % 250}."
                                   f"{i % 250 + 1}", 80, node_port=30000 + i % 2700 if i % 10 == 0 else 0,
                                   endpoints=eps))
    return out


def restore(netns: str, rules: str) -> float:
    start = time.monotonic()
    subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--noflush"], input=rules, text=True,
                   check=True, capture_output=True)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--runs", type=int, default=RUNS)
    args = ap.parse_args()
    netns = f"k8semu-bench-kp-{os.getpid()}"
    if os.path.exists(f"/run/netns/{netns}"):
        print(f"network namespace {netns} exists and is not this run's; not touching it")
        return 1
    subprocess.run(["ip", "netns", "add", netns], check=True)
    opts = iptables.Options("worker-1", "10.244.0.0/16")
    figures: dict = {}
    try:
        for n in args.services:
            views = services(n)
            rendered, loaded = [], []
            for _ in range(args.runs):
                start = time.monotonic()
                rules = iptables.render(views, opts)
                rendered.append(time.monotonic() - start)
                loaded.append(restore(netns, rules))  # a full sync: every chain written again
            lines = rules.count("\n")
            figures[n] = {"rules_lines": lines, "render_s": spread(rendered), "restore_s": spread(loaded)}
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)
    smallest = figures[min(figures)]
    backend = subprocess.run(["iptables", "--version"], capture_output=True, text=True).stdout.strip()
    results: dict = {**stamp(), "backend": backend, "endpoints_per_service": 3, "services": {}}
    for n, f in figures.items():
        f["render_ratio"] = round(f["render_s"]["median"] / smallest["render_s"]["median"], 1)
        f["restore_ratio"] = round(f["restore_s"]["median"] / smallest["restore_s"]["median"], 1)
        results["services"][str(n)] = f
        print(f"{n:5} Services ({f['rules_lines']} lines): render {text(f['render_s'], ' s')} x{f['render_ratio']}   "
              f"iptables-restore {text(f['restore_s'], ' s')} x{f['restore_ratio']}")
    print(f"({results['backend']}); saved {save('kubeproxy', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
