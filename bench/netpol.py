#!/usr/bin/env python3
"""NetworkPolicy benchmarks (issue: NetworkPolicy). Measures and reports; never fails.

    sudo .venv/bin/python bench/netpol.py

1. Apply -> enforced: from the API call applying a default-deny policy to every switch
   confirming (barrier) the view that holds it, then checked with a connection attempt that
   now times out; median and worst of 20 (and the same for deleting it).
2. 100 policies over 300 pods (3 workers, 10 namespaces): programming time (apply -> every
   switch in sync) and the number of flows, total and per node.
3. The same two on the kernel planes: flannel (k8semu's policy agent, K8SEMU-* chains) and
   calico (Felix's chains, a pair per pod): apply -> enforced, and for 100 x 300 the time until
   every node confirmed and the policy rules each node holds (``iptables-save`` lines).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.spec.loader import load_text  # noqa: E402
from bench.results import save, stamp  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

DENY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\nspec: {podSelector: {}}\n"


def synced_after(cluster: Cluster, change) -> float:
    """Seconds from ``change()`` (a request through the test client) until every switch confirms the
    view that holds it (the lock-free ``generations`` request, polled every 2 ms)."""
    start = time.monotonic()
    change()
    target = cluster.client.generations()["published"]
    while not all(g >= target for g in cluster.client.generations()["switches"].values()):
        time.sleep(0.002)
    return time.monotonic() - start


def enforcement(cluster: Cluster) -> dict:
    docs = load_text(DENY, "deny.yaml")
    target = cluster.pod("a", "x")["status"]["podIP"]
    applied, deleted = [], []
    for _ in range(20):
        applied.append(synced_after(cluster, lambda: cluster.client.apply(docs)))
        blocked = cluster.exec("b", "nc", "-z", "-w", "1", target, "80", namespace="y").returncode != 0
        assert blocked, "the policy was not enforced"
        deleted.append(synced_after(cluster, lambda: cluster.client.delete("NetworkPolicy", "x", "deny")))
    ms = lambda v: {"median_ms": round(statistics.median(v) * 1000, 1), "worst_ms": round(max(v) * 1000, 1)}  # noqa: E731
    return {"apply": ms(applied), "delete": ms(deleted)}


PLANES = {"openflow": "topologies/netpol.yaml", "flannel": "topologies/netpol-flannel.yaml",
          "calico": "topologies/netpol-calico.yaml"}
POLICY_CHAINS = {"flannel": "-A K8SEMU-", "calico": "-A cali-"}  # the policy rules' lines in iptables-save


def scale(workdir: Path, cni: str = "openflow") -> dict:
    docs = []
    for n in range(10):
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{team: t{n % 3}}}}}\n")
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: ns{n}}}
spec:
  replicas: 30
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec: {{containers: [{{name: c, image: busybox}}]}}
""")
    (workdir / "pods.yaml").write_text("---\n".join(docs))
    network = "" if cni == "openflow" else f"  network: {{cni: {cni}, kubeProxy: {{mode: iptables}}}}\n"
    (workdir / "cluster.yaml").write_text("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: np-scale}\n"
                                          "spec:\n  nodes: [{name: w, count: 3}]\n  dns: {enabled: false}\n"
                                          + network + "  manifests: [pods.yaml]\n")
    cluster = Cluster(str(workdir / "cluster.yaml")).up()
    try:
        policies = []
        for i in range(100):
            policies.append(f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p{i}, namespace: ns{i % 10}}}
spec:
  podSelector: {{matchLabels: {{app: app}}}}
  ingress:
    - from: [{{namespaceSelector: {{matchLabels: {{team: t{i % 3}}}}}}}]
      ports: [{{port: {8000 + i}}}, {{port: 9000, endPort: 9100, protocol: UDP}}]
""")
        docs = load_text("---\n".join(policies), "policies.yaml")
        seconds = synced_after(cluster, lambda: cluster.client.apply(docs))
        if cni != "openflow":
            rules = {}
            for node in ("w-1", "w-2", "w-3"):
                out = subprocess.run(["ip", "netns", "exec", cluster.netns(node), "iptables-save", "-t", "filter"],
                                     capture_output=True, text=True).stdout
                rules[node] = sum(1 for line in out.splitlines() if line.startswith(POLICY_CHAINS[cni]))
            return {"program_s": round(seconds, 2), "policy_rules_per_node": rules}
        per_node, policy_flows = {}, 0
        for node, bridge in cluster.client.status()["bridges"].items():
            out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge], capture_output=True,
                                 text=True).stdout.splitlines()
            per_node[node] = sum(1 for line in out if "cookie=" in line)
            policy_flows += sum(1 for line in out if "cookie=0x5" in line)
    finally:
        cluster.down()
    return {"program_s": round(seconds, 2), "flows_per_node": per_node, "policy_flows_total": policy_flows}


def main() -> int:
    results: dict = stamp()
    for cni, topology in PLANES.items():
        cluster = Cluster(topology).up()
        try:
            key = "enforcement" if cni == "openflow" else f"enforcement_{cni}"
            results[key] = enforcement(cluster)
            print(f"{cni}: apply -> enforced: {results[key]}", flush=True)
        finally:
            cluster.down()
        with tempfile.TemporaryDirectory() as tmp:
            key = "scale" if cni == "openflow" else f"scale_{cni}"
            results[key] = scale(Path(tmp), cni)
        print(f"{cni}: 100 policies x 300 pods: {results[key]}", flush=True)
    save("netpol", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
