#!/usr/bin/env python3
"""k8semu benchmarks (issue: Cluster up). Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/run.py [--quick]

1. ``up`` and ``down`` wall time (the CLI command, as a user runs it) for clusters of
   3 nodes x 10 pods and 10 nodes x 100 pods (pods in total), plus 10 nodes x 100 pods *each*.
2. pod-to-pod TCP throughput with iperf3 (3 s, one stream), same node and across nodes, with
   each ``podInterface`` (veth, internal-port), as a ratio to two bare namespaces joined by one
   veth measured in the same run.
All traffic stays inside namespaces made here; every load is bounded in time.
"""
from __future__ import annotations

import argparse
import json
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
metadata: {{name: bench}}
spec:
  nodes: [{{name: n, count: {nodes}}}]
  network: {network}
  manifests:
    - apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: pods}}
      spec:
        replicas: {pods}
        selector: {{matchLabels: {{app: bench}}}}
        template:
          metadata: {{labels: {{app: bench}}}}
          spec: {{containers: [{{name: c, image: busybox}}]}}
"""

IPERF_SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {{name: iperf}}
spec:
  nodes: [{{name: a}}, {{name: b}}]
  network: {network}
  manifests:
    - {{apiVersion: v1, kind: Pod, metadata: {{name: server}},
       spec: {{nodeName: a, containers: [{{name: s, image: networkstatic/iperf3}}]}}}}
    - {{apiVersion: v1, kind: Pod, metadata: {{name: near}},
       spec: {{nodeName: a, containers: [{{name: c, image: busybox}}]}}}}
    - {{apiVersion: v1, kind: Pod, metadata: {{name: far}}, spec: {{nodeName: b, containers: [{{name: c, image: busybox}}]}}}}
"""
INTERFACES = ("veth", "internal-port")


def timed(*args: str) -> float:
    start = time.monotonic()
    k8semu(*args, timeout=600)
    return time.monotonic() - start


def up_down(nodes: int, pods: int, workdir: Path, runs: int, iface: str = "veth") -> dict:
    mask = 24 if pods / nodes < 250 else 22
    spec = workdir / f"bench-{nodes}x{pods}-{iface}.yaml"
    spec.write_text(SPEC.format(nodes=nodes, pods=pods, network=f"{{nodeCIDRMaskSize: {mask}, podInterface: {iface}}}"))
    return {"nodes": nodes, "pods": pods, "pod_interface": iface, **up_down_spec(spec, runs)}


def up_down_spec(spec: Path, runs: int) -> dict:
    """``up`` then ``down`` of the ``bench`` cluster ``spec`` describes, ``runs`` times."""
    ups, downs, running = [], [], 0
    for _ in range(runs):
        ups.append(timed("up", str(spec), "--detach", "--timeout", "600"))
        running = sum(1 for p in Cluster(str(spec)).get("pods") if p["status"]["phase"] == "Running")
        downs.append(timed("--cluster", "bench", "down"))
    return {"up_s": spread(ups, 2), "down_s": spread(downs, 2), "running": running}


def iperf(client: list[str], server_ip: str, seconds: int = 3) -> float:
    out = subprocess.run(client + ["iperf3", "-c", server_ip, "-t", str(seconds), "-J"],
                         capture_output=True, text=True, timeout=seconds + 30)
    data = json.loads(out.stdout)
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def bare_veth() -> float:
    """Two namespaces and one veth, nothing else: the reference the ratios are taken to (made
    under names checked free first, and removed after)."""
    taken = [n for n in ("kbench-a", "kbench-b") if Path("/run/netns", n).exists()]
    taken += [n for n in ("kbench0", "kbench1") if Path("/sys/class/net", n).exists()]
    if taken:
        raise SystemExit(f"{taken[0]} exists and is not this benchmark's; nothing was changed")
    cmds = ["netns add kbench-a", "netns add kbench-b",
            "link add kbench0 netns kbench-a type veth peer name kbench1 netns kbench-b"]
    subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n", text=True, check=True)
    server = None
    try:
        for ns, ifname, ip in (("kbench-a", "kbench0", "10.199.0.1"), ("kbench-b", "kbench1", "10.199.0.2")):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", ifname], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", ifname, "up"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(["ip", "netns", "exec", "kbench-a", "iperf3", "-s", "-1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        poll(lambda: "5201" in subprocess.run(["ip", "netns", "exec", "kbench-a", "ss", "-ltn"],
                                              capture_output=True, text=True).stdout, what="iperf3 server")
        return iperf(["ip", "netns", "exec", "kbench-b"], "10.199.0.1")
    finally:
        if server:
            server.kill()
            server.wait()
        subprocess.run(["ip", "-batch", "-"], input="netns del kbench-a\nnetns del kbench-b\n", text=True)


def pod_to_pod(spec: Path, clients: tuple[str, str] = ("near", "far")) -> tuple[float, float]:
    """Gbit/s from each of the two client pods (IPERF_SPEC's: same node, cross node) to ``server``."""
    cluster = Cluster(str(spec)).up()
    try:
        server_ip = cluster.pod("server")["status"]["podIP"]
        poll(lambda: cluster.exec(clients[0], "sh", "-c", f"echo | nc -w1 {server_ip} 5201").returncode == 0,
             what="iperf3 server in its pod")
        return (iperf(["k8semu", "--cluster", cluster.name, "exec", clients[0], "--"], server_ip),
                iperf(["k8semu", "--cluster", cluster.name, "exec", clients[1], "--"], server_ip))
    finally:
        cluster.down()


def throughput(workdir: Path, runs: int) -> dict:
    """Each run measures the reference and both paths with each pod interface one after the
    other, so each ratio is taken within one run; the figures are the medians of the runs (#17)."""
    veths: list[float] = []
    got: dict[str, tuple[list[float], list[float]]] = {i: ([], []) for i in INTERFACES}
    for _ in range(runs):
        for iface in INTERFACES:
            spec = workdir / f"iperf-{iface}.yaml"
            spec.write_text(IPERF_SPEC.format(network=f"{{podInterface: {iface}}}"))
            same, cross = pod_to_pod(spec)
            got[iface][0].append(same)
            got[iface][1].append(cross)
        veths.append(bare_veth())
    result: dict = {"bare_veth_gbps": spread(veths, 2)}
    for iface, (sames, crosses) in got.items():
        result[iface] = {"same_node_gbps": spread(sames, 2), "cross_node_gbps": spread(crosses, 2),
                         "same_ratio": spread([s / v for s, v in zip(sames, veths)], 3),
                         "cross_ratio": spread([c / v for c, v in zip(crosses, veths)], 3)}
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="only the small cluster")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median, min, max)")
    args = parser.parse_args()
    results: dict = stamp()
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [(3, 10, "veth"), (3, 10, "internal-port")]
        if not args.quick:
            sizes += [(10, 100, "veth"), (10, 1000, "veth"), (10, 1000, "internal-port")]
        results["up_down"] = []
        for n, p, iface in sizes:
            row = up_down(n, p, Path(tmp), args.runs, iface)
            results["up_down"].append(row)
            print(f"up/down {n:>2} nodes x {p:>4} pods ({iface}): up {text(row['up_s'], ' s')}, "
                  f"down {text(row['down_s'], ' s')} ({row['running']} running)", flush=True)
        results["throughput"] = t = throughput(Path(tmp), args.runs)
        print(f"iperf3: bare veth {text(t['bare_veth_gbps'], ' Gbit/s')}")
        for iface in INTERFACES:
            r = t[iface]
            print(f"  {iface}: same node {text(r['same_node_gbps'])} ({text(r['same_ratio'])}x); "
                  f"cross node {text(r['cross_node_gbps'])} ({text(r['cross_ratio'])}x)", flush=True)
    save("cluster-up", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
