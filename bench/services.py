#!/usr/bin/env python3
"""Services benchmarks (issue: Services). Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/services.py

1. Convergence: from a change (delete a pod, scale down, scale up, readiness failure) to the
   client node's switch holding the new endpoint set in the Service's select group (read with
   ovs-ofctl dump-groups), median and worst of 20 each.
2. Time to program 1,000 Services x 3 endpoints: from the apply to every switch confirming
   (barrier) the view that holds them.
3. Connections per second through a ClusterIP versus straight to one pod IP (same pod, same
   node, sequential HTTP/1.0 requests for 3 s each, one fresh client pod per path), as a ratio.
   Each pair starts once Open vSwitch's connection table has swept the previous pair's closed
   connections; then a sustained run through the ClusterIP (5 x 3 s back to back, no sweep
   between) shows what OVS 3.1's userspace conntrack does to a client that keeps reusing its
   ports (docs/benchmarks.md: the reverse NAT entry of a reopened connection outlives it until
   the next sweep, later connections are given other source ports, then fail).
All traffic stays inside the emulation; every loop is bounded.
"""
from __future__ import annotations

import ipaddress
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from tests.cluster import Cluster, k8semu, poll  # noqa: E402

RATE = r"""
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n, slow, failed, end = 0, 0, 0, time.monotonic() + seconds
while time.monotonic() < end:
    start = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=2)
    except OSError:
        failed += 1
        continue
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    n += 1
    slow += time.monotonic() - start > 0.5
print(n / seconds, slow, failed)
"""


def group_endpoints(bridge: str) -> dict[int, set[str]]:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", bridge], capture_output=True,
                         text=True).stdout
    groups = {}
    for line in out.splitlines():
        m = re.search(r"group_id=(\d+)", line)
        if m:
            groups[int(m.group(1))] = {str(ipaddress.IPv4Address(int(x, 16)))
                                       for x in re.findall(r"load:(0x[0-9a-f]+)->NXM_NX_REG3\[\]", line)}
    return groups


def ready_ips(cluster: Cluster) -> set[str]:
    return {p["status"]["podIP"] for p in cluster.get("pods", "default", "app=web")
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
            and all(c["ready"] for c in p["status"]["containerStatuses"])}


def converge(bridge: str, change, done, timeout: float = 30) -> float:
    """Seconds from ``change()`` until some group on ``bridge`` satisfies ``done(endpoints)``."""
    start = time.monotonic()
    change()
    while time.monotonic() - start < timeout:
        if any(done(eps) for eps in group_endpoints(bridge).values()):
            return time.monotonic() - start
        time.sleep(0.002)
    raise AssertionError("no convergence")


def convergence(cluster: Cluster) -> dict:
    """Changes go through the API with the test's client (no CLI start-up counted)."""
    bridge = cluster.bridge("worker-1")  # the client pod's node

    results: dict[str, list[float]] = {"delete pod": [], "scale down": [], "scale up": [], "readiness failure": []}
    for _ in range(20):
        before = ready_ips(cluster)
        victim = next(p for p in cluster.get("pods", "default", "app=web") if p["status"].get("podIP") in before)
        gone = victim["status"]["podIP"]
        results["delete pod"].append(converge(
            bridge, lambda: cluster.client.delete("Pod", "default", victim["metadata"]["name"]),
            lambda eps: eps == before - {gone}))
        poll(lambda: len(ready_ips(cluster)) == 3, timeout=30, what="3 ready web pods")
        before = ready_ips(cluster)
        results["scale down"].append(converge(
            bridge, lambda: cluster.client.scale("Deployment", "default", "web", 2),
            lambda eps: len(eps) == 2 and eps < before))
        results["scale up"].append(converge(
            bridge, lambda: cluster.client.scale("Deployment", "default", "web", 3),
            lambda eps: len(eps) == 3 and eps != before))
        before = ready_ips(cluster)
        pod = next(p for p in cluster.get("pods", "default", "app=web") if p["status"]["podIP"] in before)
        index = cluster.pod_dir(pod["metadata"]["name"]) / "nginx" / "html" / "index.html"
        results["readiness failure"].append(converge(
            bridge, lambda: index.rename(index.with_suffix(".off")),
            lambda eps: eps == before - {pod["status"]["podIP"]}))
        index.with_suffix(".off").rename(index)
        poll(lambda: len(ready_ips(cluster)) == 3, timeout=30, what="3 ready web pods")
    return {k: {"median_ms": round(statistics.median(v) * 1000, 1), "worst_ms": round(max(v) * 1000, 1)}
            for k, v in results.items()}


def apply_bulk(cluster: Cluster) -> float:
    """Seconds from applying 1,000 Services (3 endpoints each: web's pods) to every node's data
    plane confirming them: apply answers once the view holding them is published, "synced" is
    every node confirming it (polling the API for 1,000 objects meanwhile would slow what is
    measured)."""
    docs = "".join(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: bulk-{i}}}\n"
                   f"spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}\n" for i in range(1000))
    start = time.monotonic()
    k8semu("--cluster", cluster.name, "apply", "-f", "-", input=docs, timeout=600)
    poll(lambda: cluster.client.status()["synced"], timeout=600, interval=0.05, what="1000 services programmed")
    return time.monotonic() - start


def thousand_services(cluster: Cluster) -> float:
    elapsed = apply_bulk(cluster)
    groups = len(group_endpoints(cluster.bridge("worker-1")))
    assert groups >= 1000, f"only {groups} groups on worker-1 once synced"  # checked after the clock stops
    return elapsed


def delete_bulk(cluster: Cluster) -> None:
    """Remove the 1,000 Services again (so the next run starts from the same state)."""
    names = [f"bulk-{i}" for i in range(1000)]
    k8semu("--cluster", cluster.name, "delete", "svc", *names, "--wait=false", timeout=600)
    poll(lambda: cluster.client.status()["synced"] and len(group_endpoints(cluster.bridge("worker-1"))) < 100,
         timeout=600, interval=0.1, what="the 1000 services removed")


def rate(cluster: Cluster, client: str, host: str, port: int) -> tuple[float, int, int]:
    """Connections per second, and how many took over 0.5 s or failed (2 s connect timeout)."""
    per_s, slow, failed = cluster.exec(client, "python3", "-c", RATE, host, str(port), "3", timeout=60).stdout.split()
    return float(per_s), int(slow), int(failed)


def swept(clients: list[str], timeout: float = 90) -> None:
    """Wait until the clients' connections have left Open vSwitch's table: none listed (closed
    ones time out after 30 s) and none expired but still held (the table counts those until its
    next sweep, about every 10 s), so that each pair starts from the same table."""
    def clean() -> bool:
        listed = subprocess.run(["ovs-appctl", "dpctl/dump-conntrack"], capture_output=True, text=True).stdout
        held = int(subprocess.run(["ovs-appctl", "dpctl/ct-get-nconns"], capture_output=True, text=True).stdout)
        lines = listed.splitlines()
        return not any(f"src={ip}," in line for line in lines for ip in clients) and held - len(lines) <= 20
    poll(clean, timeout=timeout, interval=1, what="the clients' connections swept from the table")


def main() -> int:
    cluster = Cluster("topologies/services.yaml").up()
    results: dict = stamp()
    try:
        cluster.wait_running("default", count=5)
        svc_ip = json.loads(k8semu("--cluster", cluster.name, "get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
        k8semu("--cluster", cluster.name, "scale", "deployment/web", "--replicas", "1")
        poll(lambda: len(ready_ips(cluster)) == 1, timeout=30, what="one web pod")
        pod_ip = next(iter(ready_ips(cluster)))
        # One fresh client pod per path: thousands of connections a second cycle through the
        # client's ports, and a reused (client IP, port) meets the server's TIME_WAIT socket of
        # the previous run; separate clients keep the two measurements independent.
        for name in ("rate-direct", "rate-service"):
            cluster.apply(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n"
                          "spec: {nodeName: worker-1, containers: [{name: c, image: busybox}]}\n")
        cluster.wait_running("default")
        clients = [p["status"]["podIP"] for p in cluster.get("pods", "default") if p["metadata"]["name"].startswith("rate-")]
        pairs = []
        for _ in range(RUNS):
            swept(clients)
            pairs.append((rate(cluster, "rate-direct", pod_ip, 80), rate(cluster, "rate-service", svc_ip, 8080)))
        results["connections_per_s"] = {"direct": spread([d[0] for d, _ in pairs], 0),
                                        "cluster_ip": spread([v[0] for _, v in pairs], 0),
                                        "ratio": spread([v[0] / d[0] for d, v in pairs], 3),
                                        "slow_or_failed": [d[1] + d[2] + v[1] + v[2] for d, v in pairs]}
        print(f"connections/s: {results['connections_per_s']}", flush=True)
        swept(clients)
        sustained = [rate(cluster, "rate-service", svc_ip, 8080) for _ in range(5)]
        results["cluster_ip_sustained"] = [{"per_s": round(r[0]), "slow": r[1], "failed": r[2]} for r in sustained]
        print(f"ClusterIP sustained, 5 x 3 s back to back: {results['cluster_ip_sustained']}", flush=True)
        k8semu("--cluster", cluster.name, "scale", "deployment/web", "--replicas", "3")
        poll(lambda: len(ready_ips(cluster)) == 3, timeout=30, what="3 web pods")
        results["convergence"] = convergence(cluster)
        for k, v in results["convergence"].items():
            print(f"convergence {k}: median {v['median_ms']} ms, worst {v['worst_ms']} ms", flush=True)
        times = []
        for _ in range(RUNS):
            times.append(thousand_services(cluster))
            delete_bulk(cluster)
        results["program_1000_services_s"] = spread(times, 2)
        print(f"1000 Services x 3 endpoints programmed in {text(results['program_1000_services_s'], ' s')}")
    finally:
        cluster.down()
    save("services", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
