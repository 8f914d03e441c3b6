#!/usr/bin/env python3
"""Nodes in two underlay subnets with the underlay router between them (issue #14's
"nodes in different subnets"). Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/racks.py [--runs N]

Pod-to-pod TCP throughput (iperf3, 3 s, one stream) from a pod on a node of the server's subnet
and from a pod on a node of the other subnet, as a ratio to two bare namespaces joined by one
veth measured in the same run: on Calico with a ``VXLANCrossSubnet`` pool (routed straight
within a subnet, VXLAN through the router across), and on Flannel's VXLAN (encapsulated both
ways, so the second figure is the router's own cost). All traffic stays inside the emulation.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from bench.run import bare_veth, pod_to_pod  # noqa: E402

PLANES = {
    "calico-crosssubnet": "cni: calico, calico: {ipPools: [{encapsulation: VXLANCrossSubnet}]}",
    "flannel-vxlan": "cni: flannel",
}
SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {{name: racks-bench}}
spec:
  nodes: [{{name: a}}, {{name: b}}, {{name: c, underlaySubnet: 172.18.1.0/24}}]
  network: {{{network}, underlay: {{subnet: 172.18.0.0/24, routedSubnets: [172.18.1.0/24]}}}}
  dns: {{enabled: false}}
  manifests:
    - {{apiVersion: v1, kind: Pod, metadata: {{name: server}},
       spec: {{nodeName: a, containers: [{{name: s, image: networkstatic/iperf3}}]}}}}
    - {{apiVersion: v1, kind: Pod, metadata: {{name: rack}}, spec: {{nodeName: b, containers: [{{name: c, image: busybox}}]}}}}
    - {{apiVersion: v1, kind: Pod, metadata: {{name: across}},
       spec: {{nodeName: c, containers: [{{name: c, image: busybox}}]}}}}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median, min, max)")
    args = parser.parse_args()
    results: dict = {**stamp(), "planes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        veths = [bare_veth() for _ in range(args.runs)]
        results["bare_veth_gbps"] = spread(veths, 2)
        print(f"bare veth {text(results['bare_veth_gbps'], ' Gbit/s')}", flush=True)
        for name, network in PLANES.items():
            spec = Path(tmp) / f"{name}.yaml"
            spec.write_text(SPEC.format(network=network))
            got = [pod_to_pod(spec, ("rack", "across")) for _ in range(args.runs)]  # same subnet, across
            results["planes"][name] = row = {
                "same_subnet_gbps": spread([g[0] for g in got], 2), "across_gbps": spread([g[1] for g in got], 2),
                "same_ratio": spread([g[0] / v for g, v in zip(got, veths)], 3),
                "across_ratio": spread([g[1] / v for g, v in zip(got, veths)], 3),
                "across_vs_same": spread([g[1] / g[0] for g in got], 3)}
            print(f"{name}: same subnet {text(row['same_subnet_gbps'])} ({text(row['same_ratio'])}x), across the "
                  f"router {text(row['across_gbps'])} ({text(row['across_ratio'])}x; "
                  f"{text(row['across_vs_same'])} of same subnet)", flush=True)
    save("racks", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
