#!/usr/bin/env python3
"""kube-proxy's iptables and nftables modes: what their rules cost to write and to load (issue: the
course's data planes). Measures and reports.

    sudo .venv/bin/python bench/kubeproxy.py [--services 100 1000 5000] [--runs 3]

For N ClusterIP Services of 3 endpoints each (and, as kube-proxy writes them, a NodePort on every
tenth), the time to render one node's rules (emulator/kubeproxy) and the time the kernel takes
to load them into an empty network namespace made for the run (named free, removed after;
nothing of the machine's own tables is touched): ``iptables-restore --noflush`` for the
iptables mode, ``nft -f`` of a fresh ``kube-proxy`` table for the nftables mode, which is what a
full kube-proxy sync costs; then the partial sync that follows one Service losing an endpoint,
as each mode writes it (iptables: KUBE-SERVICES and the other top-level chains again, that
Service's chains; nftables: that Service's chains and elements), loaded on top. kube-proxy's
nftables mode exists because the iptables syncs grow with the number of Services; each figure
is reported with its ratio to the smallest N, measured in the same run.
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
from emulator.kubeproxy import iptables, nftables  # noqa: E402
from emulator.model.netview import EndpointView, ServicePortView  # noqa: E402


def services(n: int) -> list[ServicePortView]:
    out = []
    for i in range(n):
        eps = tuple(EndpointView(f"10.244.{(3 * i + k) // 250 % 250}.{(3 * i + k) % 250 + 2}", 8080, f"worker-{k}")
                    for k in range(3))
        out.append(ServicePortView(i, f"ns{i % 50}", f"svc{i}", "http", "TCP", f"10.{96 + i // 65000}.{i // 250 % 250}."
                                   f"{i % 250 + 1}", 80, node_port=30000 + i // 10 if i % 10 == 0 else 0,
                                   endpoints=eps))
    return out


def load(netns: str, argv: list[str], rules: str) -> float:
    start = time.monotonic()
    subprocess.run(["ip", "netns", "exec", netns, *argv], input=rules, text=True, check=True, capture_output=True)
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
    nft_opts = nftables.Options("worker-1", "10.244.0.0/16", ("172.18.0.3",), ("10.96.0.0/12",))
    figures: dict = {}
    try:
        for n in args.services:
            views = services(n)
            times: dict[str, list[float]] = {k: [] for k in ("render", "restore", "nft_render", "nft_load",
                                                             "restore_one", "nft_one")}
            changed = list(views)
            one = changed[n // 2]
            changed[n // 2] = ServicePortView(**{**{f: getattr(one, f) for f in one.__dataclass_fields__},
                                                 "endpoints": one.endpoints[1:]})
            for _ in range(args.runs):
                start = time.monotonic()
                rules = iptables.render(views, opts)
                times["render"].append(time.monotonic() - start)
                times["restore"].append(load(netns, ["iptables-restore", "--noflush"], rules))  # every chain again
                start = time.monotonic()
                nft = nftables.render(views, nft_opts)
                times["nft_render"].append(time.monotonic() - start)
                subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "table", "ip", "kube-proxy"],
                               capture_output=True)  # absent the first time
                times["nft_load"].append(load(netns, ["nft", "-f", "-"], nft))
                partial = iptables.render_update(views, changed, opts)  # one Service lost an endpoint
                times["restore_one"].append(load(netns, ["iptables-restore", "--noflush"], partial))
                times["nft_one"].append(load(netns, ["nft", "-f", "-"], nftables.update(views, changed, nft_opts)))
            figures[n] = {"rules_lines": rules.count("\n"), "nft_lines": nft.count("\n"),
                          **{f"{k}_s": spread(v) for k, v in times.items()}}
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)
    smallest = figures[min(figures)]
    backend = subprocess.run(["iptables", "--version"], capture_output=True, text=True).stdout.strip()
    results: dict = {**stamp(), "backend": backend, "endpoints_per_service": 3, "services": {}}
    for n, f in figures.items():
        for k in ("render", "restore", "nft_render", "nft_load", "restore_one", "nft_one"):
            f[f"{k}_ratio"] = round(f[f"{k}_s"]["median"] / smallest[f"{k}_s"]["median"], 1)
        results["services"][str(n)] = f
        print(f"{n:5} Services: iptables ({f['rules_lines']} lines) render {text(f['render_s'], ' s')} "
              f"x{f['render_ratio']}, iptables-restore {text(f['restore_s'], ' s')} x{f['restore_ratio']}; "
              f"nftables ({f['nft_lines']} lines) render {text(f['nft_render_s'], ' s')} x{f['nft_render_ratio']}, "
              f"nft -f {text(f['nft_load_s'], ' s')} x{f['nft_load_ratio']}; one Service changed: "
              f"iptables {text(f['restore_one_s'], ' s')} x{f['restore_one_ratio']}, "
              f"nftables {text(f['nft_one_s'], ' s')} x{f['nft_one_ratio']}")
    print(f"({results['backend']}); saved {save('kubeproxy', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
