#!/usr/bin/env python3
"""k8semu benchmarks (issue: Cluster up). Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/run.py [--quick]

1. ``up`` and ``down`` wall time (the CLI command, as a user runs it) for clusters of
   3 nodes x 10 pods and 10 nodes x 100 pods (pods in total), plus 10 nodes x 100 pods *each*.
2. pod-to-pod TCP throughput with iperf3 (3 s, one stream), same node and across nodes, as a
   ratio to two bare namespaces joined by one veth measured in the same run.
All traffic stays inside namespaces made here; every load is bounded in time.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import save, stamp  # noqa: E402
from tests.cluster import Cluster, k8semu, poll  # noqa: E402

SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {{name: bench}}
spec:
  nodes: [{{name: n, count: {nodes}}}]
  network: {{nodeCIDRMaskSize: {mask}}}
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
metadata: {name: iperf}
spec:
  nodes: [{name: a}, {name: b}]
  manifests:
    - {apiVersion: v1, kind: Pod, metadata: {name: server},
       spec: {nodeName: a, containers: [{name: s, image: networkstatic/iperf3}]}}
    - {apiVersion: v1, kind: Pod, metadata: {name: near}, spec: {nodeName: a, containers: [{name: c, image: busybox}]}}
    - {apiVersion: v1, kind: Pod, metadata: {name: far}, spec: {nodeName: b, containers: [{name: c, image: busybox}]}}
"""


def timed(*args: str) -> float:
    start = time.monotonic()
    k8semu(*args, timeout=600)
    return time.monotonic() - start


def up_down(nodes: int, pods: int, workdir: Path) -> dict:
    mask = 24 if pods / nodes < 250 else 22
    spec = workdir / f"bench-{nodes}x{pods}.yaml"
    spec.write_text(SPEC.format(nodes=nodes, pods=pods, mask=mask))
    up = timed("up", str(spec), "--detach", "--timeout", "600")
    running = sum(1 for p in Cluster(str(spec)).get("pods") if p["status"]["phase"] == "Running")
    down = timed("--cluster", "bench", "down")
    return {"nodes": nodes, "pods": pods, "up_s": round(up, 2), "down_s": round(down, 2), "running": running}


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


def throughput(workdir: Path) -> dict:
    spec = workdir / "iperf.yaml"
    spec.write_text(IPERF_SPEC)
    cluster = Cluster(str(spec)).up()
    try:
        server_ip = cluster.pod("server")["status"]["podIP"]
        poll(lambda: cluster.exec("near", "sh", "-c", f"echo | nc -w1 {server_ip} 5201").returncode == 0,
             what="iperf3 server in its pod")
        same = iperf(["k8semu", "--cluster", cluster.name, "exec", "near", "--"], server_ip)
        cross = iperf(["k8semu", "--cluster", cluster.name, "exec", "far", "--"], server_ip)
    finally:
        cluster.down()
    veth = bare_veth()
    return {"bare_veth_gbps": round(veth, 2), "same_node_gbps": round(same, 2),
            "cross_node_gbps": round(cross, 2), "same_ratio": round(same / veth, 2),
            "cross_ratio": round(cross / veth, 2)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="only the small cluster")
    args = parser.parse_args()
    results: dict = {**stamp(), "machine": f"{platform.node()} {platform.machine()}, {platform.release()}"}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [(3, 10)] if args.quick else [(3, 10), (10, 100), (10, 1000)]
        results["up_down"] = [up_down(n, p, Path(tmp)) for n, p in sizes]
        for row in results["up_down"]:
            print(f"up/down {row['nodes']:>2} nodes x {row['pods']:>4} pods: up {row['up_s']:6.2f} s, "
                  f"down {row['down_s']:6.2f} s ({row['running']} running)", flush=True)
        results["throughput"] = t = throughput(Path(tmp))
        print(f"iperf3: bare veth {t['bare_veth_gbps']} Gbit/s; same node {t['same_node_gbps']} Gbit/s "
              f"({t['same_ratio']}x); cross node {t['cross_node_gbps']} Gbit/s ({t['cross_ratio']}x)")
    save("cluster-up", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
