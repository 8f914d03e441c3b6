#!/usr/bin/env python3
"""Ingress benchmark (issue: Ingress). Measures and reports; never fails.

    sudo .venv/bin/python bench/ingress.py

wrk (1 thread, 20 connections, 5 s, bounded) in one run: through the ingress controller (the
NodePort on a node, Host: web.example) and straight to the nginx backend pod. Both are
run from the control-plane node's namespace, which reaches pod IPs directly; the external host
has no route into the pod network (as outside a real cluster), so it cannot make the direct run.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp  # noqa: E402
from tests.cluster import Cluster, poll  # noqa: E402


def wrk(cluster: Cluster, url: str, host: str | None) -> dict:
    argv = ["wrk", "-t1", "-c20", "-d5s", "--latency"] + (["-H", f"Host: {host}"] if host else []) + [url]
    out = cluster.exec("control-plane", *argv, timeout=60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    return {"rps": round(rps), "p99_ms": round(float(p99.group(1)) * scale, 2)}


def main() -> int:
    cluster = Cluster("topologies/ingress.yaml").up()
    results: dict = stamp()
    try:
        # The backend is real nginx (the colour app's echo server is Python and would be the bottleneck).
        cluster.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: color, labels: {app: web}}\n"
                      "spec: {nodeName: worker-2, containers: [{name: nginx, image: nginx}]}\n---\n"
                      "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: color}\n"
                      "spec: {selector: {app: web}, ports: [{port: 80}]}\n---\n"
                      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: color}\n"
                      "spec:\n  rules:\n    - host: web.example\n      http:\n        paths:\n"
                      "          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n")
        poll(lambda: "Welcome" in cluster.exec("control-plane", "curl", "-s", "-H", "Host: web.example",
                                               "http://172.18.0.3:30080/").stdout, what="the ingress")
        web = cluster.pod("web", "color")["status"]["podIP"]
        runs = [(wrk(cluster, "http://172.18.0.3:30080/", "web.example"), wrk(cluster, f"http://{web}/", None))
                for _ in range(RUNS)]  # each run: through the ingress, then direct (its reference)
        for i, label in enumerate(("ingress", "direct")):
            results[label] = {k: spread([r[i][k] for r in runs], 2) for k in ("rps", "p99_ms")}
        results["ratio"] = spread([r[0]["rps"] / r[1]["rps"] for r in runs], 3)
        print(json.dumps(results))
    finally:
        cluster.down()
    save("ingress", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
