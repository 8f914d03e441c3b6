#!/usr/bin/env python3
"""Faults (issue #16): how exactly the shaper and the loss hold what was asked, and how long an
impairment takes to apply and to heal. Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/faults.py [--runs N]

On topologies/faults.yaml (openflow), node to node (worker-2 -> worker-1, through worker-1's
underlay link), in one run:
1. The reference: iperf3 TCP, one stream, 3 s, with the link unimpaired.
2. ``bandwidth`` 10, 100 and 1000 Mbit/s on node/worker-1: throughput each way and its ratio to
   the rate asked (1000 Mbit/s is above what this machine's unimpaired path may carry: the
   reference says whether that row measures the shaper or the machine).
3. ``loss`` 10 %: the share of 2,000 pings (one every 2 ms) that got no reply.
4. ``impair`` and ``heal`` through the API (the typed client, as the CLI and the scenarios), ms.
5. ``node stop`` to the Service no longer sending to that node: from the stop (through the API)
   until the lost node's pod has left the Service's endpoints and every switch confirmed that
   view, at the default timers (timeScale 1: the 50 s grace period) and at timeScale 0.1 (5 s);
   the part after the grace period is k8semu's own.
All traffic stays inside the emulation; every loop is bounded.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from tests.cluster import Cluster, iperf, poll  # noqa: E402

RATES = (10, 100, 1000)


def lost(client: str, ip: str, count: int = 2000) -> float:
    done = subprocess.run(["ip", "netns", "exec", client, "ping", "-q", "-n", "-c", str(count), "-i", "0.002", "-W",
                           "1", ip], capture_output=True, text=True, timeout=120)
    return float(re.search(r"([\d.]+)% packet loss", done.stdout).group(1))


def measure(cluster: Cluster) -> dict:
    w1, w2 = cluster.netns("worker-1"), cluster.netns("worker-2")
    ip = next(a["address"] for n in cluster.get("nodes") if n["metadata"]["name"] == "worker-1"
              for a in n["status"]["addresses"] if a["type"] == "InternalIP")
    row: dict = {"reference_mbit": round(iperf(w1, w2, ip, False), 1)}
    apply_ms, heal_ms = [], []
    for rate in RATES:
        begin = time.monotonic()
        cluster.client.impair("node/worker-1", {"bandwidth": f"{rate}Mbit"})
        apply_ms.append((time.monotonic() - begin) * 1000)
        row[f"{rate}"] = {"to_mbit": round(iperf(w1, w2, ip, False), 2), "from_mbit": round(iperf(w1, w2, ip, True), 2)}
        begin = time.monotonic()
        cluster.client.heal("node/worker-1")
        heal_ms.append((time.monotonic() - begin) * 1000)
    cluster.client.impair("node/worker-1", {"loss": "10%"})
    row["loss_pct"] = lost(w2, ip)
    cluster.client.heal("node/worker-1")
    row["apply_ms"], row["heal_ms"] = round(sorted(apply_ms)[1], 1), round(sorted(heal_ms)[1], 1)
    return row


NODE_SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {{name: lost}}
spec:
  nodes: [{{name: control-plane, role: control-plane}}, {{name: worker, count: 2}}]
  timeScale: {scale}
  manifests:
    - apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: web}}
      spec:
        replicas: 2
        selector: {{matchLabels: {{app: web}}}}
        template:
          metadata: {{labels: {{app: web}}}}
          spec: {{containers: [{{name: nginx, image: nginx:1.25}}]}}
    - apiVersion: v1
      kind: Service
      metadata: {{name: web}}
      spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}
"""


def node_stop(spec: Path) -> dict:
    """Seconds from ``node stop`` to the lost pod out of the endpoints, and to every switch
    holding that view."""
    cluster = Cluster(str(spec)).up()
    try:
        cluster.synced(timeout=60)
        pods = poll(lambda: (lambda ps: ps if len({p["spec"]["nodeName"] for p in ps}) == 2 else None)(
            [p for p in cluster.client.get("Pod", "default") if p["metadata"]["labels"].get("app") == "web"
             and p["status"].get("podIP")]), timeout=30, what="a web pod on each worker")
        lost = next(p for p in pods if p["spec"]["nodeName"] == "worker-1")["status"]["podIP"]

        def gone() -> bool:
            eps = next(e for e in cluster.client.get("Endpoints", "default") if e["metadata"]["name"] == "web")
            return lost not in {a["ip"] for s in eps.get("subsets", []) for a in s.get("addresses", [])}
        begin = time.monotonic()
        cluster.client.node_stop("worker-1")
        poll(gone, timeout=120, interval=0.005, what="the lost pod out of the endpoints")
        endpoints = time.monotonic() - begin
        published = cluster.client.generations()["published"]
        poll(lambda: min(cluster.client.generations()["switches"].values()) >= published, timeout=30,
             interval=0.002, what="every switch to confirm the view")
        return {"endpoints_s": round(endpoints, 3), "dataplane_s": round(time.monotonic() - begin, 3)}
    finally:
        cluster.client.node_start("worker-1")
        cluster.down()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median, min, max)")
    args = parser.parse_args()
    cluster = Cluster("topologies/faults.yaml").up()
    try:
        runs = [measure(cluster) for _ in range(args.runs)]
    finally:
        cluster.down()
    stops: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (1, 0.1):
            spec = Path(tmp) / f"lost-{scale}.yaml"
            spec.write_text(NODE_SPEC.format(scale=scale))
            rows = [node_stop(spec) for _ in range(args.runs if scale != 1 else 1)]
            stops[str(scale)] = {"endpoints_s": spread([r["endpoints_s"] for r in rows], 3),
                                 "dataplane_s": spread([r["dataplane_s"] for r in rows], 3)}
            print(f"node stop at timeScale {scale} (grace {50 * scale:g} s): endpoint gone after "
                  f"{text(stops[str(scale)]['endpoints_s'], ' s')}, every switch with it after "
                  f"{text(stops[str(scale)]['dataplane_s'], ' s')}", flush=True)
    results: dict = {**stamp(), "reference_mbit": spread([r["reference_mbit"] for r in runs], 1),
                     "loss_pct_for_10": spread([r["loss_pct"] for r in runs], 2),
                     "apply_ms": spread([r["apply_ms"] for r in runs], 1), "heal_ms": spread([r["heal_ms"] for r in runs], 1),
                     "rates": {}}
    print(f"unimpaired node to node: {text(results['reference_mbit'], ' Mbit/s')}")
    for rate in RATES:
        to = spread([r[str(rate)]["to_mbit"] for r in runs], 2)
        back = spread([r[str(rate)]["from_mbit"] for r in runs], 2)
        results["rates"][str(rate)] = {"to_mbit": to, "from_mbit": back,
                                       "ratio_to": round(to["median"] / rate, 3), "ratio_from": round(back["median"] / rate, 3)}
        print(f"bandwidth {rate} Mbit/s: into the node {text(to, ' Mbit/s')} (ratio {to['median'] / rate:.3f}), "
              f"out of it {text(back, ' Mbit/s')} (ratio {back['median'] / rate:.3f})", flush=True)
    print(f"loss 10 %: {text(results['loss_pct_for_10'], ' %')} of 2,000 pings unanswered")
    print(f"impair through the API {text(results['apply_ms'], ' ms')}, heal {text(results['heal_ms'], ' ms')}")
    results["node_stop"] = stops
    save("faults", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
