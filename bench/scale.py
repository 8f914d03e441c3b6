#!/usr/bin/env python3
"""Scale benchmarks (issue: Contain what runs as root). Measures and reports; never fails.

    sudo .venv/bin/python bench/scale.py [--quick] [--sizes 10x1000,50x1000] [--repeat N]

1. The teaching-size cluster: 3 nodes x 30 nginx pods, cluster DNS and ingress on: ``up`` wall
   time as a user runs it (every pod Running and every switch in sync when it returns), median of
   ``--repeat`` runs, and ``down``.
2. N nodes x P pods in all (one Deployment, one Service in front of all of them): ``up`` and
   ``down``.
3. Convergence: delete one pod of the Deployment and wait until every switch confirms the
   generation without it, at 3, 10 and 50 nodes (same pods per node), median of 20 deletions.
4. Validation of the largest spec k8semu accepts (250 nodes, a 65,536-address pool, 10,000
   pods in 10 Deployments, 1,000 Services, 500 NetworkPolicies): time and peak memory of
   ``k8semu plan``.
Everything stays inside namespaces the clusters make; every run is bounded in time.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from tests.cluster import Cluster, k8semu, poll  # noqa: E402

SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {{name: {name}}}
spec:
  nodes: [{{name: n, count: {nodes}}}]
  network: {{nodeCIDRMaskSize: {mask}}}
  dns: {{enabled: {dns}}}
  ingress: {{enabled: {ingress}}}
  manifests:
    - apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: pods}}
      spec:
        replicas: {pods}
        selector: {{matchLabels: {{app: bench}}}}
        template:
          metadata: {{labels: {{app: bench}}}}
          spec: {{containers: [{{name: c, image: {image}}}]}}
    - apiVersion: v1
      kind: Service
      metadata: {{name: pods}}
      spec: {{selector: {{app: bench}}, ports: [{{port: 80}}]}}
"""

SERVICE = """    - {{apiVersion: v1, kind: Service, metadata: {{name: s{i}}},
       spec: {{selector: {{app: bench}}, ports: [{{port: 80}}]}}}}
"""


def write_spec(workdir: Path, name: str, nodes: int, pods: int, image: str = "busybox",
               dns: bool = False, ingress: bool = False, services: int = 0) -> Path:
    mask = 24 if pods / nodes < 250 else 22
    text = SPEC.format(name=name, nodes=nodes, pods=pods, mask=mask, image=image,
                       dns=str(dns).lower(), ingress=str(ingress).lower())
    text += "".join(SERVICE.format(i=i) for i in range(services))
    path = workdir / f"{name}.yaml"
    path.write_text(text)
    return path


def timed(*args: str, timeout: float = 900) -> float:
    start = time.monotonic()
    k8semu(*args, timeout=timeout)
    return time.monotonic() - start


def up_down(spec: Path, pods: int) -> dict:
    cluster = Cluster(str(spec))
    up = timed("up", str(spec), "--detach", "--timeout", "900")
    status = cluster.client.status()
    running = sum(1 for p in cluster.get("pods") if p["status"]["phase"] == "Running")
    down = timed("--cluster", cluster.name, "down")
    return {"up_s": round(up, 2), "down_s": round(down, 2), "running": running, "synced": status["synced"],
            "pods_expected": pods}


def convergence(spec: Path, samples: int) -> dict:
    """Delete a pod of the Deployment (its endpoint leaves the Service on every node); time from
    the request until every switch confirms a view without it (the API's ``generations``, which
    never waits behind the manager's work)."""
    cluster = Cluster(str(spec)).up()
    try:
        cluster.synced(timeout=300)
        times = []
        for _ in range(samples):
            victim = next(p for p in cluster.client.get("Pod", "default")
                          if p["metadata"]["labels"].get("app") == "bench" and p["status"].get("phase") == "Running"
                          and not p["metadata"].get("deletionTimestamp"))
            start = time.monotonic()
            cluster.client.delete("Pod", "default", victim["metadata"]["name"])
            target = cluster.client.generations()["published"]  # the view without it, published before the reply

            def confirmed() -> bool:
                switches = cluster.client.generations()["switches"]
                return bool(switches) and all(g >= target for g in switches.values())
            poll(confirmed, timeout=60, interval=0.001, what="every switch to confirm the deletion")
            times.append((time.monotonic() - start) * 1000)
            cluster.synced(timeout=120)  # the replacement pod is in before the next sample
        return {"median_ms": round(statistics.median(times), 1), "worst_ms": round(max(times), 1),
                "best_ms": round(min(times), 1), "samples": samples}
    finally:
        cluster.down()


POLICY = """    - {{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {{name: p{i}}},
       spec: {{podSelector: {{matchLabels: {{app: bench}}}}, ingress: [{{from: [{{podSelector: {{}}}}], ports: [{{port: {port}}}]}}]}}}}
"""


def largest_spec(workdir: Path) -> dict:
    """The largest cluster ``plan`` accepts: 250 nodes, 10,000 pods (the limit) in 10
    Deployments, 1,000 Services, 500 NetworkPolicies, a 65,536-address LoadBalancer pool."""
    spec = write_spec(workdir, "largest", 250, 1000, services=1000)
    text = spec.read_text().replace("nodeCIDRMaskSize: 24", "nodeCIDRMaskSize: 24, "
                                    "loadBalancerPool: 192.168.0.0-192.168.255.255")
    deployment = text[text.index("    - apiVersion: apps/v1"):text.index("    - apiVersion: v1\n")]
    text += "".join(deployment.replace("name: pods}", f"name: pods{i}}}").replace("app: bench}", f"app: bench{i}}}")
                    for i in range(1, 10))
    text += "".join(POLICY.format(i=i, port=1000 + i) for i in range(500))
    spec.write_text(text)
    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "emulator", "plan", str(spec)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    seconds = time.monotonic() - start
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024, 1),
            "accepted": done.returncode == 0, "bytes": len(text),
            "error": "" if done.returncode == 0 else (done.stderr or done.stdout).strip().splitlines()[0]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="teaching size and 10 x 100 only")
    parser.add_argument("--sizes", default="10x1000,50x1000", help="NODESxPODS,... for up/down")
    parser.add_argument("--repeat", type=int, default=max(RUNS, 5), help="runs of the teaching-size cluster")
    parser.add_argument("--samples", type=int, default=20, help="pod deletions per convergence size")
    args = parser.parse_args()
    results: dict = stamp()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        teaching = write_spec(work, "teaching", 3, 30, image="nginx", dns=True, ingress=True)
        runs = [up_down(teaching, 30) for _ in range(1 if args.quick else args.repeat)]
        results["teaching"] = {"up_s": spread([r["up_s"] for r in runs], 2),
                               "down_s": spread([r["down_s"] for r in runs], 2),
                               "running": [r["running"] for r in runs]}
        print(f"teaching 3 x 30 nginx + DNS + ingress: up {text(results['teaching']['up_s'], ' s')}, "
              f"down {text(results['teaching']['down_s'], ' s')}", flush=True)
        sizes = ["10x100"] if args.quick else args.sizes.split(",")
        results["up_down"] = []
        for size in sizes:
            nodes, pods = (int(x) for x in size.split("x"))
            spec = write_spec(work, f"s{nodes}x{pods}", nodes, pods)
            done = [up_down(spec, pods) for _ in range(1 if args.quick else RUNS)]
            row = {"nodes": nodes, "pods": pods, "up_s": spread([d["up_s"] for d in done], 2),
                   "down_s": spread([d["down_s"] for d in done], 2), "running": [d["running"] for d in done],
                   "synced": all(d["synced"] for d in done)}
            results["up_down"].append(row)
            print(f"{nodes} nodes x {pods} pods: up {text(row['up_s'], ' s')}, down {text(row['down_s'], ' s')}, "
                  f"{row['running']} running, synced {row['synced']}", flush=True)
        results["convergence"] = []
        for nodes in ([3] if args.quick else [3, 10, 50]):
            row = {"nodes": nodes, "pods": 20 * nodes,
                   **convergence(write_spec(work, f"c{nodes}", nodes, 20 * nodes), args.samples)}
            results["convergence"].append(row)
            print(f"convergence at {nodes} nodes ({20 * nodes} pods): median {row['median_ms']} ms, "
                  f"worst {row['worst_ms']} ms", flush=True)
        results["largest_spec"] = big = largest_spec(work)
        print(f"largest spec ({big['bytes']} bytes): plan {big['seconds']} s, peak {big['peak_rss_mib']} MiB, "
              f"accepted {big['accepted']} {big['error']}", flush=True)
    save("scale", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
