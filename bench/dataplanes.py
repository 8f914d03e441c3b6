#!/usr/bin/env python3
"""The data planes side by side (issues #13, #14): ``cni: openflow`` (OVS + k8semu's controller),
``cni: flannel`` with kube-proxy's iptables and nftables modes, ``cni: calico`` routed and
with VXLAN, and ``cni: openflow`` with kube-proxy beside the controller. Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/dataplanes.py [--quick] [--runs N] [--planes NAME,...]

For each data plane, in one run:
1. ``up`` and ``down`` wall time (the CLI, as a user runs it): 3 nodes x 10 pods, 10 nodes x 100.
2. pod-to-pod TCP throughput (iperf3, 3 s, one stream), same node and across nodes, as a ratio
   to two bare namespaces joined by one veth measured in the same run (bench/run.py's).
3. Service convergence: from deleting an endpoint pod through the API to every node's data
   plane holding a view without it (the generation each switch confirmed, or each node's
   kube-proxy loaded), median and worst of 20. kube-proxy syncs at most once per minSyncPeriod
   (its default 1 s): the flannel planes are measured with 1 s and with 0 s.
4. 1,000 Services x 3 endpoints: from the apply to every node holding them.
How one node's rules grow with 100, 1,000 and 5,000 Services is bench/kubeproxy.py's.
All traffic stays inside the emulation; every loop is bounded.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from bench.run import IPERF_SPEC, SPEC, bare_veth, pod_to_pod, up_down_spec  # noqa: E402
from bench.services import apply_bulk  # noqa: E402
from emulator.model.netview import NetworkView  # noqa: E402
from tests.cluster import Cluster, poll  # noqa: E402

PLANES = {  # name -> spec.network fields
    "openflow": "{}",
    # kube-proxy beside the controller (Antrea with kube-proxy): a node is in sync once both hold a view
    "openflow-kube-proxy-iptables-0s": "{kubeProxy: {mode: iptables, minSyncPeriod: 0s}}",
    "flannel-iptables-1s": "{cni: flannel, kubeProxy: {mode: iptables}}",
    "flannel-iptables-0s": "{cni: flannel, kubeProxy: {mode: iptables, minSyncPeriod: 0s}}",
    "flannel-nftables-0s": "{cni: flannel, kubeProxy: {mode: nftables, minSyncPeriod: 0s}}",
    "calico-iptables-0s": "{cni: calico, kubeProxy: {mode: iptables, minSyncPeriod: 0s}}",
    "calico-vxlan-iptables-0s": "{cni: calico, kubeProxy: {mode: iptables, minSyncPeriod: 0s}, "
                                "calico: {ipPools: [{encapsulation: VXLAN}]}}",
}

SVC_SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {{name: convergence}}
spec:
  nodes: [{{name: control-plane, role: control-plane}}, {{name: worker, count: 2}}]
  network: {network}
  dns: {{enabled: false}}
  manifests:
    - apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: web}}
      spec:
        replicas: 3
        selector: {{matchLabels: {{app: web}}}}
        template:
          metadata: {{labels: {{app: web}}}}
          spec: {{containers: [{{name: nginx, image: nginx, ports: [{{containerPort: 80}}]}}]}}
    - {{apiVersion: v1, kind: Service, metadata: {{name: web}}, spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}}}
"""


def view(cluster: Cluster) -> NetworkView:
    return NetworkView.from_json((cluster.run / "view.json").read_text())


def endpoint_gone(cluster: Cluster, ip: str, timeout: float = 30) -> float:
    """Seconds until a published view lacks ``ip`` among web's endpoints and every node's data
    plane has confirmed that view (or a later one)."""
    start = time.monotonic()
    generation = None
    while time.monotonic() - start < timeout:
        if generation is None:
            v = view(cluster)
            web = [s for s in v.services if s.name == "web"]
            if web and all(ip not in {e.ip for e in s.endpoints} for s in web):
                generation = v.generation
        if generation is not None and min(cluster.client.generations()["switches"].values()) >= generation:
            return time.monotonic() - start
        time.sleep(0.002)
    raise AssertionError("no convergence")


def convergence(cluster: Cluster, rounds: int) -> dict:
    times = []
    for _ in range(rounds):
        poll(lambda: len([p for p in cluster.get("pods", "default", "app=web") if p["status"].get("podIP")
                          and not p["metadata"].get("deletionTimestamp")]) == 3, timeout=30, what="3 web pods")
        cluster.synced(timeout=30)
        victim = next(p for p in cluster.get("pods", "default", "app=web") if not p["metadata"].get("deletionTimestamp"))
        ip = victim["status"]["podIP"]
        start = time.monotonic()
        cluster.client.delete("Pod", "default", victim["metadata"]["name"])
        times.append(time.monotonic() - start + endpoint_gone(cluster, ip))
    return {"median_ms": round(statistics.median(times) * 1000, 1), "worst_ms": round(max(times) * 1000, 1)}


def thousand_services(cluster: Cluster) -> float:
    elapsed = apply_bulk(cluster)
    assert sum(1 for s in view(cluster).services if s.name.startswith("bulk-")) == 1000  # after the clock stops
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 x 10 only, 5 convergence rounds, no 1,000 Services")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median, min, max)")
    parser.add_argument("--planes", default=",".join(PLANES), help="which data planes (default: every one)")
    args = parser.parse_args()
    chosen = [p for p in args.planes.split(",") if p]
    unknown = [p for p in chosen if p not in PLANES]
    if unknown:
        parser.error(f"unknown data plane {unknown[0]!r} (known: {', '.join(PLANES)})")
    results: dict = {**stamp(), "planes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        veths = [bare_veth() for _ in range(args.runs)]
        results["bare_veth_gbps"] = spread(veths, 2)
        print(f"bare veth {text(results['bare_veth_gbps'], ' Gbit/s')}", flush=True)
        for name, network in ((n, PLANES[n]) for n in chosen):
            row: dict = {}
            sizes = [(3, 10)] + ([] if args.quick else [(10, 100)])
            for nodes, pods in sizes:
                spec = Path(tmp) / f"up-{name}-{nodes}x{pods}.yaml"
                spec.write_text(SPEC.format(nodes=nodes, pods=pods, network=network))
                row[f"{nodes}x{pods}"] = r = up_down_spec(spec, args.runs)
                print(f"{name}: up/down {nodes} x {pods}: up {text(r['up_s'], ' s')}, down {text(r['down_s'], ' s')} "
                      f"({r['running']} running)", flush=True)
            # the sync period changes no packet's path, and pod to pod never meets kube-proxy
            if not name.endswith("-1s") and not name.startswith("openflow-kube-proxy"):
                spec = Path(tmp) / f"iperf-{name}.yaml"
                spec.write_text(IPERF_SPEC.format(network=network))
                got = [pod_to_pod(spec) for _ in range(args.runs)]
                row["throughput"] = t = {
                    "same_node_gbps": spread([g[0] for g in got], 2), "cross_node_gbps": spread([g[1] for g in got], 2),
                    "same_ratio": spread([g[0] / v for g, v in zip(got, veths)], 3),
                    "cross_ratio": spread([g[1] / v for g, v in zip(got, veths)], 3)}
                print(f"{name}: iperf3 same node {text(t['same_node_gbps'])} ({text(t['same_ratio'])}x), cross node "
                      f"{text(t['cross_node_gbps'])} ({text(t['cross_ratio'])}x)", flush=True)
            spec = Path(tmp) / f"svc-{name}.yaml"
            spec.write_text(SVC_SPEC.format(network=network))
            cluster = Cluster(str(spec)).up()
            try:
                row["convergence"] = c = convergence(cluster, 5 if args.quick else 20)
                print(f"{name}: delete a pod -> every node: median {c['median_ms']} ms, worst {c['worst_ms']} ms",
                      flush=True)
                if not args.quick:
                    row["thousand_services_s"] = s = round(thousand_services(cluster), 2)
                    print(f"{name}: 1,000 Services x 3 endpoints programmed on every node in {s} s", flush=True)
            finally:
                cluster.down()
            results["planes"][name] = row
    save("dataplanes", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
