#!/usr/bin/env python3
"""What the OpenAPI schemas, defaulting on write and the CNI cache cost. Measures and reports.

    sudo .venv/bin/python bench/schemas.py [--samples 30]

In-process: building and serializing each group-version's OpenAPI v3 document (once per
server, then cached) and its size; parsing a Deployment manifest with the API server's defaults
against the defaulting step alone (the ratio is what defaulting adds to a write). On a 3-node
cluster (topologies/default.yaml): ``kubectl explain pod.spec.containers`` and ``kubectl explain
deploy --recursive`` against ``kubectl get pods`` (the reference: a process, the same
kubeconfig, one request), p50/p99 of ``--samples``, and ``kubectl api-resources`` with an empty
cache (discovery from nothing: aggregated, two requests). On a flannel cluster
(topologies/flannel.yaml): ``k8semu cleanup`` after ``kill -9`` of the manager, which now runs
CNI DEL from libcni's cache for every pod before the namespaces go, against ``k8semu down`` of
the same cluster (the reference, same run; median of 3 each).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import sample  # noqa: E402
from bench.results import save, stamp  # noqa: E402
from emulator.api import openapi, resources  # noqa: E402
from emulator.model import defaults  # noqa: E402
from emulator.spec.loader import load_text  # noqa: E402
from emulator.spec.manifests import parse_documents  # noqa: E402
from tests.cluster import Cluster, k8semu, kubectl, poll  # noqa: E402

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {port: 80}}
        env: [{name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
      volumes: [{name: conf, configMap: {name: web}}]
"""


def in_process(samples: int) -> dict:
    out: dict = {"documents": {}}
    for group, versions in resources.groups(None).items():
        for version in versions:
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            openapi.served_document.cache_clear()
            start = time.perf_counter()
            body, _ = openapi.served_document(path)
            out["documents"][path] = {"build_ms": round((time.perf_counter() - start) * 1000, 2),
                                      "bytes": len(body),
                                      "schemas": len(openapi.group_version_document(path)["components"]["schemas"])}
    docs = load_text(DEPLOYMENT, "bench.yaml")
    parse = [0.0] * samples
    default = [0.0] * samples
    for i in range(samples):
        start = time.perf_counter()
        dep = parse_documents(docs).objects[0]
        parse[i] = time.perf_counter() - start
        raw = {k: v for k, v in dep.template.raw["spec"].items()}
        start = time.perf_counter()
        defaults.pod_spec(raw)
        default[i] = time.perf_counter() - start
    out["parse_deployment_us"] = round(statistics.median(parse) * 1e6, 1)
    out["defaulting_us"] = round(statistics.median(default) * 1e6, 1)
    out["defaulting_share"] = round(statistics.median(default) / statistics.median(parse), 3)
    return out


def cold_discovery() -> int:
    """``kubectl api-resources`` with an empty cache directory: every discovery request it makes
    (two with aggregated discovery); returns how many it made."""
    with tempfile.TemporaryDirectory() as cache:
        done = kubectl("api-resources", "--cache-dir", cache, "-v=6")
    return done.stderr.count('verb="GET"')


def explain(samples: int) -> dict:
    cluster = Cluster("topologies/default.yaml").up()
    try:
        kubectl("explain", "pods")  # the first read fills kubectl's cache, as for any user
        return {"discovery_cold": sample(cold_discovery, samples),
                "discovery_cold_requests": cold_discovery(),
                "explain_containers": sample(lambda: kubectl("explain", "pod.spec.containers"), samples),
                "explain_deploy_recursive": sample(lambda: kubectl("explain", "deploy", "--recursive"), samples),
                "reference_get_pods": sample(lambda: kubectl("get", "pods"), samples)}
    finally:
        cluster.down()


def crash_cleanup(rounds: int) -> dict:
    downs, cleanups, notes = [], [], []
    for _ in range(rounds):
        cluster = Cluster("topologies/flannel.yaml").up()
        start = time.monotonic()
        cluster.down()
        downs.append(time.monotonic() - start)
        cluster = Cluster("topologies/flannel.yaml").up()
        pid = int(k8semu("status").stdout.split("manager pid ")[1].split(",")[0])
        os.kill(pid, signal.SIGKILL)
        poll(lambda: not Path(f"/proc/{pid}").exists() or
             Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z", what="the manager to die")
        start = time.monotonic()
        done = k8semu("cleanup").stdout
        cleanups.append(time.monotonic() - start)
        notes.append(next((line for line in done.splitlines() if "CNI DEL run" in line), ""))
    return {"down_s": round(statistics.median(downs), 2), "cleanup_after_kill9_s": round(statistics.median(cleanups), 2),
            "ratio": round(statistics.median(cleanups) / statistics.median(downs), 2), "notes": notes}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    result = {"stamp": stamp(), "in_process": in_process(200), "explain": explain(args.samples),
              "crash_cleanup_flannel": crash_cleanup(3)}
    print(save("schemas", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
