#!/usr/bin/env python3
"""See the packets (issue #15): how long ``k8semu trace`` takes, static and live, against the
switch's own tracer and an API round trip measured in the same run. Measures and reports; never
fails on a slow machine.

    sudo .venv/bin/python bench/trace.py [--runs N]

On topologies/services.yaml (openflow), from the client pod on worker-2, per run:
1. References: one ``ovs-appctl ofproto/trace-packet-out`` (one section of one switch) and one
   ``status`` through the API (the typed client, as the CLI).
2. The static trace of a cross-node ClusterIP connection (client -> svc/web, followed to an
   endpoint on worker-1: two switches, three conntrack sections, the group, the tunnel), 20
   times: its median, and its ratio to the references (target < 1 s).
3. The same with ``--live`` (captures at every point, one real connection, conntrack read, the
   trace re-run along the endpoint the switch picked), 10 times.
4. On topologies/services-flannel.yaml the same trace (always live there: nftables' tracer in
   every node, captures, routes and the FDB), 5 times.
All traffic stays inside the emulation; every loop is bounded.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from tests.cluster import Cluster  # noqa: E402


def ms(fn, n: int) -> float:
    """Median milliseconds of ``n`` calls."""
    times = []
    for _ in range(n):
        begin = time.perf_counter()
        fn()
        times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times)


def measure(cluster: Cluster) -> dict:
    c = cluster.client
    remote = next(p["status"]["podIP"] for p in c.get("Pod", "default")
                  if p["metadata"]["labels"].get("app") == "web" and p["spec"]["nodeName"] == "worker-1")
    status = c.status()
    bridge = status["bridges"]["worker-2"]
    flow = "tcp,in_port=1,nw_src=10.244.1.9,nw_dst=10.244.2.9,tp_src=40000,tp_dst=80"
    row = {"ofproto_trace_ms": ms(lambda: subprocess.run(["ovs-appctl", "ofproto/trace-packet-out", bridge, flow,
                                                          "resubmit(,0)"], capture_output=True, check=True), 20),
           "api_status_ms": ms(c.status, 20)}
    out = c.trace("client", "svc/web", endpoint=f"{remote}:80")
    assert out["verdict"] == "delivered" and any(h["kind"] == "tunnel" for h in out["hops"]), out["verdict"]
    row["sections"] = sum(1 for h in out["hops"] if h["kind"] in ("conntrack", "group", "tunnel")) + 1
    row["static_ms"] = ms(lambda: c.trace("client", "svc/web", endpoint=f"{remote}:80"), 20)
    agreed = []
    row["live_ms"] = ms(lambda: agreed.append(c.trace("client", "svc/web", live=True)["live"]["agrees"]), 10)
    row["live_agreed"] = sum(agreed)
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median, min, max)")
    args = parser.parse_args()
    cluster = Cluster("topologies/services.yaml").up()
    try:
        cluster.synced(timeout=60)
        runs = [measure(cluster) for _ in range(args.runs)]
    finally:
        cluster.down()
    flannel = Cluster("topologies/services-flannel.yaml").up()  # the kernel planes' trace is live (nft monitor)
    try:
        kernel_ms = [ms(lambda: flannel.client.trace("client", "svc/web"), 5) for _ in range(args.runs)]
    finally:
        flannel.down()
    figures = ("ofproto_trace_ms", "api_status_ms", "static_ms", "live_ms")
    results: dict = {**stamp(), "flannel_trace_ms": spread(kernel_ms, 1),
                     **{k: spread([r[k] for r in runs], 1) for k in figures},
                     "sections": runs[0]["sections"], "live_agreed": sum(r["live_agreed"] for r in runs),
                     "live_runs": 10 * len(runs)}
    static = results["static_ms"]["median"]
    results["static_per_ofproto_trace"] = round(static / results["ofproto_trace_ms"]["median"], 1)
    results["static_per_api_status"] = round(static / results["api_status_ms"]["median"], 1)
    print(f"reference: one ofproto/trace-packet-out {text(results['ofproto_trace_ms'], ' ms')}, "
          f"one API status {text(results['api_status_ms'], ' ms')}")
    print(f"static trace, cross-node ClusterIP ({results['sections']} switch sections): "
          f"{text(results['static_ms'], ' ms')} = {results['static_per_ofproto_trace']}x one ofproto/trace, "
          f"{results['static_per_api_status']}x one API status (target < 1,000 ms)")
    print(f"live trace: {text(results['live_ms'], ' ms')}; agreed with the static trace in "
          f"{results['live_agreed']}/{results['live_runs']}", flush=True)
    print(f"cni: flannel (kube-proxy iptables), a trace is one real attempt watched by nft monitor in every node: "
          f"{text(results['flannel_trace_ms'], ' ms')}", flush=True)
    save("trace", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
