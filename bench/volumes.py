#!/usr/bin/env python3
"""Pod volume benchmarks (issue: the rest of the workload API). Measures and reports.

    sudo .venv/bin/python bench/volumes.py [--replicas 30] [--runs 3] [--updates 20]

On a 3-node cluster: the time from creating a Deployment through the API until all its pods run,
are ready and every switch confirmed the view, and from scaling it to 0 until they are gone, for
pods without volumes (the reference, same run) and for pods with a configMap volume under /etc
(a shadow of /etc in each pod), an emptyDir at a new top-level folder (a new root by pivot_root)
and a downwardAPI volume: the cost of volumes is the ratio. Then the time from patching a
ConfigMap until the mounted file holds the new value (read where the pod's bind mount reads it,
the volume's folder in the run directory), ``--updates`` times, each patch at a random phase of
the kubelet's refresh pass: that period is 1 s here, where Kubernetes' kubelet takes up to its sync period (1 min) plus its ConfigMap
cache TTL.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client as kclient, config as kconfig  # noqa: E402

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from bench.scale import write_spec  # noqa: E402
from emulator.runtime.records import cluster_dir  # noqa: E402
from tests.cluster import KUBECONFIG, Cluster, poll  # noqa: E402

POD = {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"]}],
       "terminationGracePeriodSeconds": 1,
       "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}
VOLUMES = {"volumes": [{"name": "config", "configMap": {"name": "bench"}}, {"name": "scratch", "emptyDir": {}},
                       {"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                                  "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}
MOUNTS = [{"name": "config", "mountPath": "/etc/bench-config"}, {"name": "scratch", "mountPath": "/bench-data"},
          {"name": "info", "mountPath": "/etc/podinfo"}]


def deployment(name: str, volumes: bool, replicas: int) -> dict:
    spec = {**POD, "containers": [{**POD["containers"][0], **({"volumeMounts": MOUNTS} if volumes else {})}],
            **(VOLUMES if volumes else {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def settled(cluster: Cluster, pods: int) -> bool:
    s = cluster.client.status()
    return s["synced"] and s["running"] == s["pods"] == pods


def cycle(cluster: Cluster, apps: kclient.AppsV1Api, name: str, volumes: bool, replicas: int) -> tuple[float, float]:
    base = cluster.client.status()["pods"]
    start = time.monotonic()
    apps.create_namespaced_deployment("default", deployment(name, volumes, replicas))
    poll(lambda: apps.read_namespaced_deployment(name, "default").status.ready_replicas == replicas
         and settled(cluster, base + replicas), timeout=300, interval=0.02, what=f"{name} ready")
    up = time.monotonic() - start
    start = time.monotonic()
    apps.patch_namespaced_deployment_scale(name, "default", {"spec": {"replicas": 0}})
    poll(lambda: settled(cluster, base), timeout=300, interval=0.02, what=f"{name} gone")
    down = time.monotonic() - start
    apps.delete_namespaced_deployment(name, "default")
    return up, down


def updates(cluster: Cluster, core: kclient.CoreV1Api, apps: kclient.AppsV1Api, count: int) -> list[float]:
    """Seconds from each ConfigMap patch until the mounted file holds the new value."""
    apps.create_namespaced_deployment("default", deployment("watch", True, 1))
    pod = poll(lambda: [p for p in core.list_namespaced_pod("default", label_selector="app=watch").items
                        if p.status.phase == "Running"], timeout=60, interval=0.05, what="the watching pod")[0]
    target = cluster_dir(cluster.name) / "volumes" / f"default_{pod.metadata.name}" / "config" / "value"
    out = []
    rng = random.Random(1)
    for i in range(count):
        # a random phase against the kubelet's 1 s pass: right after an update the next patch
        # would always wait a whole period, which says nothing of what a user waits on average
        time.sleep(rng.uniform(0, 1))
        start = time.monotonic()
        core.patch_namespaced_config_map("bench", "default", {"data": {"value": str(i)}})
        poll(lambda: target.exists() and target.read_text() == str(i), timeout=30, interval=0.005,
             what="the update in the mounted file")
        out.append(time.monotonic() - start)
    apps.delete_namespaced_deployment("watch", "default")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=30)
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--updates", type=int, default=20)
    args = ap.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"no volumes": [], "3 volumes": []}
    with tempfile.TemporaryDirectory() as work:
        cluster = Cluster(str(write_spec(Path(work), "bench-volumes", 3, 0))).up()
        try:
            api = kconfig.new_client_from_config(str(KUBECONFIG))
            apps, core = kclient.AppsV1Api(api), kclient.CoreV1Api(api)
            core.create_namespaced_config_map("default", {"metadata": {"name": "bench"}, "data": {"value": "start"}})
            for _ in range(args.runs):  # interleaved, so both see the same machine state
                rows["no volumes"].append(cycle(cluster, apps, "plain", False, args.replicas))
                rows["3 volumes"].append(cycle(cluster, apps, "mounted", True, args.replicas))
            latency = spread(updates(cluster, core, apps, args.updates))
        finally:
            cluster.down()
    results: dict = {**stamp(), "replicas": args.replicas, "nodes": 3, "cases": {}, "update_s": latency}
    reference = rows["no volumes"]
    for name, values in rows.items():
        up, down = spread([v[0] for v in values]), spread([v[1] for v in values])
        results["cases"][name] = {"up_s": up, "down_s": down,
                                  "up_ratio": round(up["median"] / spread([v[0] for v in reference])["median"], 2),
                                  "down_ratio": round(down["median"] / spread([v[1] for v in reference])["median"], 2)}
        print(f"{name:12} up {text(up, ' s')}  x{results['cases'][name]['up_ratio']}   "
              f"gone {text(down, ' s')}  x{results['cases'][name]['down_ratio']}")
    print(f"ConfigMap update -> mounted file ({args.updates} updates): {text(latency, ' s')}")
    print(f"saved {save('volumes', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
