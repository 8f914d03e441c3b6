#!/usr/bin/env python3
"""Calico's BGP (issue #14): how fast a block's route reaches every node, and what a route
reflector saves. Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/calico.py [--quick] [--runs N]

For clusters of 10 and 50 nodes (``--quick``: 10), with the node-to-node mesh and with two route
reflectors, in one run:
1. ``up`` wall time (the CLI, as a user runs it; no pods, DNS off): BIRD on every node, sessions
   opening after BIRD's one-second connect delay.
2. BGP sessions per node (``birdc show protocols``, Established): a mesh node, a reflector, a client.
3. Block convergence: a pod created on a node that holds no block yet claims one; from the
   create through the API to every node confirming a view with that block (each node's
   kube-proxy rules loaded and its kernel holding the block's route: the generation it
   confirmed), median and worst of ``rounds`` nodes.
4. On the mesh clusters, Calico's objects written through the API (``through_the_api``): a
   second IPPool taking the pods over, and the mesh turned into two route reflectors.
Nodes cannot join a running cluster here, so "a new node's blocks" is a node's first block.
Pod-to-pod throughput (routed) beside Flannel's VXLAN is bench/dataplanes.py's.
All traffic stays inside the emulation; every loop is bounded.
"""
from __future__ import annotations

import argparse
import ipaddress
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from emulator.model.netview import NetworkView  # noqa: E402
from emulator.spec.loader import load_text  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {{name: bgp}}
spec:
  nodes: [{{name: n, count: {nodes}}}]
  dns: {{enabled: false}}
  network:
    cni: calico
    kubeProxy: {{minSyncPeriod: 0s}}
    calico: {{ipPools: [{{cidr: 10.244.0.0/17}}], bgp: {{routeReflectors: [{reflectors}]}}}}
"""
NEW_POOL = """apiVersion: crd.projectcalico.org/v1
kind: IPPool
metadata: {name: second}
spec: {cidr: 10.244.128.0/17, blockSize: 28, natOutgoing: true}
"""
SECOND = ipaddress.IPv4Network("10.244.128.0/17")
REFLECTOR_PEER = """apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: peer-with-route-reflectors}
spec: {nodeSelector: all(), peerSelector: "route-reflector == 'true'"}
"""
POD = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  nodeName: n-{i}\n  containers: [{{name: c, image: busybox}}]\n"


def sessions(cluster: Cluster, node: str) -> int:
    out = cluster.exec(node, "birdc", "show", "protocols", check=True).stdout
    return len(re.findall(r"^\S+\s+BGP\s+\S+\s+up\s+\S+\s+Established", out, re.M))


def block_converged(cluster: Cluster, node: str, timeout: float = 60) -> float:
    """Seconds until a published view holds a block of ``node`` and every node confirmed it."""
    start = time.monotonic()
    generation = None
    while time.monotonic() - start < timeout:
        if generation is None:
            view = NetworkView.from_json((cluster.run / "view.json").read_text())
            if any(owner == node for _, owner in view.blocks):
                generation = view.generation
        if generation is not None and min(cluster.client.generations()["switches"].values()) >= generation:
            return time.monotonic() - start
        time.sleep(0.002)
    raise AssertionError(f"{node}'s block did not converge within {timeout}s")


def confirmed_after(cluster: Cluster, changed, timeout: float = 120) -> float:
    """Seconds until a published view satisfies ``changed`` and every node confirmed it."""
    start = time.monotonic()
    generation = None
    while time.monotonic() - start < timeout:
        if generation is None:
            view = NetworkView.from_json((cluster.run / "view.json").read_text())
            if changed(view):
                generation = view.generation
        if generation is not None and min(cluster.client.generations()["switches"].values()) >= generation:
            return time.monotonic() - start
        time.sleep(0.002)
    raise AssertionError(f"the change was not confirmed within {timeout}s")


def through_the_api(cluster: Cluster, nodes: int) -> dict:
    """On a mesh cluster, what a user writes through the API (as kubectl would), each timed from
    its first request to every node confirming it:
    - a second IPPool (/28 blocks) with the first one disabled, then a pod on a node holding no
      block of it: its new block on every node;
    - the mesh to two route reflectors as Calico's docs do it: annotate and label two nodes,
      the BGPPeer, the mesh off: every node's sessions and routes (clients keep 2 sessions)."""
    client = cluster.client
    begin = time.monotonic()
    client.apply(load_text(NEW_POOL, "pool.yaml"))
    pool = client._resource("IPPool").path(None, "default-ipv4-ippool")
    client.request("PATCH", pool, {"spec": {"disabled": True}}, content_type="application/merge-patch+json")
    client.apply(load_text(POD.format(i=nodes).replace("name: p", "name: q"), "q.yaml"))
    pool_s = time.monotonic() - begin + confirmed_after(
        cluster, lambda v: any(owner == f"n-{nodes}" and ipaddress.IPv4Network(cidr).subnet_of(SECOND)
                               for cidr, owner in v.blocks))
    begin = time.monotonic()
    for node in ("n-1", "n-2"):
        path = client._resource("Node").path(None, node)
        client.request("PATCH", path, {"metadata": {"labels": {"route-reflector": "true"}, "annotations": {
            "projectcalico.org/RouteReflectorClusterID": "244.0.0.1"}}}, content_type="application/merge-patch+json")
    client.apply(load_text(REFLECTOR_PEER, "peer.yaml"))
    config = client._resource("BGPConfiguration").path(None, "default")
    client.request("PATCH", config, {"spec": {"nodeToNodeMeshEnabled": False}},
                   content_type="application/merge-patch+json")
    reflectors_s = time.monotonic() - begin + confirmed_after(cluster, lambda v: v.bgp is not None and not v.bgp.mesh)
    return {"pool_s": round(pool_s, 3), "reflectors_s": round(reflectors_s, 3),
            "sessions_client_after": sessions(cluster, f"n-{nodes}")}


def measure(spec: Path, nodes: int, reflectors: list[str], rounds: int) -> dict:
    start = time.monotonic()
    cluster = Cluster(str(spec)).up()
    up = time.monotonic() - start
    try:
        cluster.synced(timeout=120)
        row: dict = {"up_s": round(up, 2)}
        if reflectors:
            row["sessions_reflector"] = sessions(cluster, reflectors[0])
            row["sessions_client"] = sessions(cluster, f"n-{nodes}")
        else:
            row["sessions_mesh_node"] = sessions(cluster, f"n-{nodes}")
        times = []
        for i in range(3, 3 + rounds):  # n-3 onwards: none of them a reflector
            docs = load_text(POD.format(i=i), f"p{i}.yaml")
            begin = time.monotonic()
            cluster.client.apply(docs)  # through the API, as kubectl's create
            times.append(time.monotonic() - begin + block_converged(cluster, f"n-{i}"))
        row["block_convergence"] = {"median_ms": round(statistics.median(times) * 1000, 1),
                                    "worst_ms": round(max(times) * 1000, 1)}
        if not reflectors:
            row["api"] = through_the_api(cluster, nodes)
        return row
    finally:
        cluster.down()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10 nodes only, 3 rounds")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median, min, max)")
    args = parser.parse_args()
    results: dict = {**stamp(), "clusters": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (10,) if args.quick else (10, 50):
            for layout, reflectors in (("mesh", []), ("two-reflectors", ["n-1", "n-2"])):
                spec = Path(tmp) / f"bgp-{nodes}-{layout}.yaml"
                spec.write_text(SPEC.format(nodes=nodes, reflectors=", ".join(reflectors)))
                runs = [measure(spec, nodes, reflectors, 3 if args.quick else 7) for _ in range(args.runs)]
                row = {"up_s": spread([r["up_s"] for r in runs], 2),
                       "block_median_ms": spread([r["block_convergence"]["median_ms"] for r in runs], 1),
                       "block_worst_ms": spread([r["block_convergence"]["worst_ms"] for r in runs], 1),
                       **{k: v for k, v in runs[0].items() if k.startswith("sessions")}}
                if not reflectors:
                    row["api"] = {"pool_s": spread([r["api"]["pool_s"] for r in runs], 3),
                                  "reflectors_s": spread([r["api"]["reflectors_s"] for r in runs], 3),
                                  "sessions_client_after": runs[0]["api"]["sessions_client_after"]}
                results["clusters"][f"{nodes}-{layout}"] = row
                counted = ", ".join(f"{k.removeprefix('sessions_')} {v}" for k, v in row.items() if k.startswith("sessions"))
                print(f"{nodes} nodes, {layout}: up {text(row['up_s'], ' s')}; BGP sessions: {counted}; a node's first "
                      f"block on every node: median {text(row['block_median_ms'], ' ms')}, worst "
                      f"{text(row['block_worst_ms'], ' ms')}", flush=True)
                if "api" in row:
                    api = row["api"]
                    print(f"  through the API: a second IPPool, the first disabled, a pod's block of it on every "
                          f"node {text(api['pool_s'], ' s')}; mesh to two reflectors (annotate, label, BGPPeer, "
                          f"mesh off) on every node {text(api['reflectors_s'], ' s')}, then a client holds "
                          f"{api['sessions_client_after']} sessions", flush=True)
    save("calico", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
