#!/usr/bin/env python3
"""Component faults (issue #16, ``k8semu fault``): how long each takes to show, and to heal, beside
the same thing with nothing broken, measured in the same run. Measures and reports; never fails
on a slow machine.

    sudo .venv/bin/python bench/components.py [--runs N]

On topologies/faults-calico.yaml (it has every component but the SDN controller), in one run:
1. DNS: a lookup from server-1 (the reference); after ``fault kill coredns``, the time until a
   lookup is answered again; with ``fault stop dns/outside``, the time CoreDNS takes to answer
   SERVFAIL for a name outside the cluster.
2. A new Service: the time from its creation until server-1 (worker-1) reaches it, with kube-proxy
   running (the reference), and with kube-proxy stopped on worker-1 from its ``fault start``.
3. BIRD: after ``fault stop bird --node worker-2``, the time until worker-1 has withdrawn
   worker-2's block; after ``fault start``, until the route is back.
4. A change confirmed on every node (a scale through the API, until every node's generation
   holds it): with every node up (the reference) and with worker-2 lost (``node stop``, whose
   routes the confirmation lets be).
All traffic stays inside the emulation; every loop is bounded.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from tests.cluster import Cluster, k8semu, poll  # noqa: E402

SERVICE = """apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{selector: {{app: web}}, ports: [{{port: 8080, targetPort: 80}}]}}
"""


def dig(cluster: Cluster, name: str, seconds: int = 1) -> str:
    return cluster.exec("server-1", "dig", f"+time={seconds}", "+tries=1", name).stdout


def timed(start, condition, timeout: float = 60, what: str = "") -> float:
    """Seconds from calling ``start()`` until ``condition()`` holds."""
    begin = time.monotonic()
    start()
    poll(condition, timeout=timeout, interval=0.01, what=what)
    return time.monotonic() - begin


def reaches(cluster: Cluster, service: str) -> bool:
    ip = next(s for s in cluster.client.get("Service", "default") if s["metadata"]["name"] == service)["spec"]["clusterIP"]
    return cluster.curl("server-1", f"http://{ip}:8080/", timeout=0.5).returncode == 0


def new_service(cluster: Cluster, name: str, stopped: bool) -> float:
    """Seconds from creating a Service until server-1 reaches it (kube-proxy stopped on worker-1
    meanwhile: from its start)."""
    if stopped:
        cluster.client.fault("stop", "kube-proxy", "worker-1")
    cluster.apply(SERVICE.format(name=name))
    start = (lambda: cluster.client.fault("start", "kube-proxy", "worker-1")) if stopped else (lambda: None)
    took = timed(start, lambda: reaches(cluster, name), what=f"server-1 reaching {name}")
    k8semu("--cluster", cluster.name, "delete", "service", name)
    return took


def confirmed(cluster: Cluster, replicas: int) -> float:
    """Seconds from a scale until every node's generation holds it."""
    def scale() -> None:
        cluster.client.scale("Deployment", "default", "web", replicas)

    def held() -> bool:
        gens = cluster.client.generations()
        return min(gens["switches"].values()) >= gens["published"]
    return timed(scale, held, what="every node confirming the scale")


def measure(cluster: Cluster, run: int) -> dict:
    w2 = next(a["address"] for n in cluster.get("nodes") if n["metadata"]["name"] == "worker-2"
              for a in n["status"]["addresses"] if a["type"] == "InternalIP")

    def routed() -> bool:
        return f"via {w2} " in subprocess.run(["ip", "netns", "exec", cluster.netns("worker-1"), "ip", "route", "show",
                                               "proto", "bird"], capture_output=True, text=True).stdout
    row: dict = {}
    begin = time.monotonic()
    assert "NOERROR" in dig(cluster, "web.default.svc.cluster.local")
    row["lookup_s"] = time.monotonic() - begin
    row["coredns_kill_s"] = timed(lambda: cluster.client.fault("kill", "coredns"),
                                  lambda: "status: NOERROR" in dig(cluster, "web.default.svc.cluster.local"),
                                  what="a lookup answered after the kill")
    cluster.client.fault("stop", "dns/outside")
    begin = time.monotonic()
    answer = dig(cluster, f"r{run}-{time.time_ns()}.example.com", seconds=10)
    row["servfail_s"] = time.monotonic() - begin
    cluster.client.fault("start", "dns/outside")
    assert "status: SERVFAIL" in answer, answer
    row["service_s"] = new_service(cluster, f"ref{run}", stopped=False)
    row["service_after_start_s"] = new_service(cluster, f"late{run}", stopped=True)
    row["bird_stop_s"] = timed(lambda: cluster.client.fault("stop", "bird", "worker-2"), lambda: not routed(),
                               what="worker-2's routes withdrawn")
    row["bird_start_s"] = timed(lambda: cluster.client.fault("start", "bird", "worker-2"), routed, what="routes back")
    row["confirm_s"] = confirmed(cluster, 3)
    cluster.client.node_stop("worker-2")
    try:
        row["confirm_node_lost_s"] = confirmed(cluster, 2)
    finally:
        cluster.client.node_start("worker-2")
    poll(routed, timeout=30, what="worker-2's routes back after its start")
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median, min, max)")
    args = parser.parse_args()
    cluster = Cluster("topologies/faults-calico.yaml").up()
    try:
        cluster.synced(timeout=60)
        runs = [measure(cluster, i) for i in range(args.runs)]
    finally:
        cluster.down()
    figures = {key: spread([r[key] for r in runs], 3) for key in runs[0]}
    results = {**stamp(), **figures}
    ratio = {key: round(figures[key]["median"] / figures[ref]["median"], 2) for key, ref in (
        ("coredns_kill_s", "lookup_s"), ("service_after_start_s", "service_s"), ("confirm_node_lost_s", "confirm_s"))}
    results["ratios"] = ratio
    print(f"a lookup {text(figures['lookup_s'], ' s')}; answered again after `fault kill coredns` "
          f"{text(figures['coredns_kill_s'], ' s')} ({ratio['coredns_kill_s']}x); SERVFAIL with the upstream stopped "
          f"after {text(figures['servfail_s'], ' s')}")
    print(f"a new Service reached from worker-1 {text(figures['service_s'], ' s')}; made while its kube-proxy was "
          f"stopped: {text(figures['service_after_start_s'], ' s')} from `fault start` ({ratio['service_after_start_s']}x)")
    print(f"BIRD stopped on worker-2: its routes gone from worker-1 after {text(figures['bird_stop_s'], ' s')}; "
          f"started: back after {text(figures['bird_start_s'], ' s')}")
    print(f"a scale confirmed by every node {text(figures['confirm_s'], ' s')}; with worker-2 lost "
          f"{text(figures['confirm_node_lost_s'], ' s')} ({ratio['confirm_node_lost_s']}x)")
    save("components", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
