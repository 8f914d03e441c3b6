#!/usr/bin/env python3
"""StatefulSet, DaemonSet and Job benchmarks (issue: the rest of the workload API). Measures and reports.

    sudo .venv/bin/python bench/workloads.py [--replicas 30] [--runs 3]

On a 3-node cluster, the time from creating a workload through the API (the Python client) until
all its pods run, are ready and every switch confirmed the view, then from scaling it to 0 (or
deleting it) until every pod is gone: a Deployment (the reference, same run), a StatefulSet
with podManagementPolicy Parallel, the same StatefulSet OrderedReady (one pod at a time, each
once the one before is ready, as kube-controller-manager does: its cost is the ratio), and a
DaemonSet on every node, and a Job of as many completions, all in parallel (timed until it is
complete, then from its deletion until its pods are gone). Medians of ``--runs`` runs with min
and max, and each as a ratio to the Deployment's.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client as kclient, config as kconfig  # noqa: E402

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from bench.scale import write_spec  # noqa: E402
from tests.cluster import KUBECONFIG, Cluster, poll  # noqa: E402

TEMPLATE = {"metadata": {"labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"]}],
                     "terminationGracePeriodSeconds": 1,
                     "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                      "effect": "NoSchedule"}]}}


def body(kind: str, replicas: int, policy: str = "") -> dict:
    if kind == "Job":  # every pod runs `true` once
        template = {"spec": {**TEMPLATE["spec"], "restartPolicy": "Never",
                             "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bench"},
                "spec": {"completions": replicas, "parallelism": replicas, "template": template}}
    spec: dict = {"selector": {"matchLabels": {"app": "bench"}}, "template": TEMPLATE}
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if policy:
        spec.update(serviceName="bench", podManagementPolicy=policy)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "bench"}, "spec": spec}


def settled(cluster: Cluster, pods: int) -> bool:
    s = cluster.client.status()
    return s["synced"] and s["running"] == s["pods"] == pods


def job_cycle(cluster: Cluster, batch: kclient.BatchV1Api, completions: int) -> tuple[float, float]:
    """(seconds until the Job is complete, seconds from deleting it until its pods are gone)."""
    base = cluster.client.status()["pods"]
    start = time.monotonic()
    batch.create_namespaced_job("default", body("Job", completions))
    poll(lambda: (batch.read_namespaced_job("bench", "default").status.succeeded or 0) == completions, timeout=300,
         interval=0.02, what="the Job complete")
    up = time.monotonic() - start
    start = time.monotonic()
    batch.delete_namespaced_job("bench", "default", propagation_policy="Background")
    poll(lambda: settled(cluster, base), timeout=300, interval=0.02, what="the Job's pods gone")
    return up, time.monotonic() - start


def cycle(cluster: Cluster, apps: kclient.AppsV1Api, kind: str, replicas: int, policy: str = "") -> tuple[float, float]:
    """(seconds until every pod runs and is ready, seconds until they are all gone again)."""
    base = cluster.client.status()["pods"]
    want = len(cluster.client.status()["nodes"]) if kind == "DaemonSet" else replicas
    create = {"Deployment": apps.create_namespaced_deployment, "StatefulSet": apps.create_namespaced_stateful_set,
              "DaemonSet": apps.create_namespaced_daemon_set}[kind]
    delete = {"Deployment": apps.delete_namespaced_deployment, "StatefulSet": apps.delete_namespaced_stateful_set,
              "DaemonSet": apps.delete_namespaced_daemon_set}[kind]
    read = {"Deployment": apps.read_namespaced_deployment, "StatefulSet": apps.read_namespaced_stateful_set,
            "DaemonSet": apps.read_namespaced_daemon_set}[kind]

    def ready() -> bool:
        st = read("bench", "default").status
        return (st.number_ready if kind == "DaemonSet" else st.ready_replicas) == want and settled(cluster, base + want)
    start = time.monotonic()
    create("default", body(kind, replicas, policy))
    poll(ready, timeout=300, interval=0.02, what=f"{kind} {policy} ready")
    up = time.monotonic() - start
    start = time.monotonic()
    if kind == "DaemonSet":
        delete("bench", "default")
    else:
        apps.patch_namespaced_stateful_set_scale("bench", "default", {"spec": {"replicas": 0}}) if kind == "StatefulSet" \
            else apps.patch_namespaced_deployment_scale("bench", "default", {"spec": {"replicas": 0}})
    poll(lambda: settled(cluster, base), timeout=300, interval=0.02, what=f"{kind} {policy} gone")
    down = time.monotonic() - start
    if kind != "DaemonSet":
        delete("bench", "default")
    return up, down


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=30)
    ap.add_argument("--runs", type=int, default=RUNS)
    args = ap.parse_args()
    cases = [("Deployment", ""), ("StatefulSet", "Parallel"), ("StatefulSet", "OrderedReady"), ("DaemonSet", ""),
             ("Job", "")]
    rows: dict[str, list[tuple[float, float]]] = {f"{k} {p}".strip(): [] for k, p in cases}
    with tempfile.TemporaryDirectory() as work:
        cluster = Cluster(str(write_spec(Path(work), "bench-workloads", 3, 0))).up()
        try:
            api = kconfig.new_client_from_config(str(KUBECONFIG))
            apps, batch = kclient.AppsV1Api(api), kclient.BatchV1Api(api)
            for _ in range(args.runs):  # interleaved, so every case sees the same machine state
                for kind, policy in cases:
                    rows[f"{kind} {policy}".strip()].append(
                        job_cycle(cluster, batch, args.replicas) if kind == "Job"
                        else cycle(cluster, apps, kind, args.replicas, policy))
        finally:
            cluster.down()
    results: dict = {**stamp(), "replicas": args.replicas, "nodes": 3, "cases": {}}
    reference = rows["Deployment"]
    for name, values in rows.items():
        up, down = spread([v[0] for v in values]), spread([v[1] for v in values])
        results["cases"][name] = {
            "up_s": up, "down_s": down,
            "up_ratio": round(up["median"] / spread([v[0] for v in reference])["median"], 2),
            "down_ratio": round(down["median"] / spread([v[1] for v in reference])["median"], 2)}
        print(f"{name:26} up {text(up, ' s')}  x{results['cases'][name]['up_ratio']}   "
              f"gone {text(down, ' s')}  x{results['cases'][name]['down_ratio']}")
    print(f"saved {save('workloads', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
