#!/usr/bin/env python3
"""Cluster DNS benchmarks (issue: Cluster DNS). Measures and reports; never fails.

    sudo .venv/bin/python bench/cluster_dns.py

From a client pod, in one run, against one coredns pod and against dnsmasq (Debian's, in a pod
on the same node, serving the same names from a hosts file, authoritative for cluster.local):
- maximum queries per second with dnsperf (10 s, 100 outstanding) for a cached Service name
  and for misses (a different nonexistent name each query);
- p50/p99 latency at a paced 1,000 queries per second for 5 s (bench/dnsload.py).
All queries go to addresses inside the emulation; every run is bounded in time.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp  # noqa: E402
from tests.cluster import Cluster, k8semu, poll  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")


def dnsperf(cluster: Cluster, server: str, queries: Path) -> float:
    out = cluster.exec("client", "dnsperf", "-s", server, "-d", str(queries), "-l", "10", "-q", "100",
                       "-c", "1", timeout=60).stdout
    return float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))


def paced(cluster: Cluster, server: str, name: str) -> dict:
    out = cluster.exec("client", PYTHON, str(ROOT / "bench" / "dnsload.py"), server, name, "1000", "5",
                       timeout=60).stdout
    return json.loads(out)


def main() -> int:
    cluster = Cluster("topologies/dns.yaml").up()
    results: dict = stamp()
    # pods see the machine's files read-only but have their own /run and /tmp: the query files
    # and dnsmasq's hosts file live in a folder of the checkout, which pods see
    work = Path(tempfile.mkdtemp(prefix="work-", dir=ROOT / "bench"))
    try:
        coredns = cluster.get("pods", "kube-system", "k8s-app=kube-dns")[0]
        web_ip = json.loads(k8semu("--cluster", cluster.name, "get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
        (work / "hosts").write_text(f"{web_ip} web.default.svc.cluster.local\n")
        cluster.apply(f"""apiVersion: v1
kind: Pod
metadata: {{name: dnsmasq}}
spec:
  nodeName: {coredns['spec']['nodeName']}
  containers:
    - name: dnsmasq
      image: busybox
      command: [dnsmasq, --no-daemon, --no-resolv, --no-hosts, --addn-hosts={work / 'hosts'},
                --local=/cluster.local/, --cache-size=10000, --port=53, --user=root]
""")
        cluster.wait_running("default")
        servers = {"k8semu": coredns["status"]["podIP"], "dnsmasq": cluster.pod("dnsmasq")["status"]["podIP"]}
        (work / "cached.txt").write_text("web.default.svc.cluster.local A\n")
        (work / "miss.txt").write_text("".join(f"m{i}.default.svc.cluster.local A\n" for i in range(100000)))
        for label, server in servers.items():
            poll(lambda: cluster.exec("client", "dig", "+short", f"@{server}",
                                      "web.default.svc.cluster.local").stdout.strip() == web_ip,
                 what=f"{label} to answer")
        runs = []
        for _ in range(RUNS):  # each run measures both servers, so each ratio is within one run
            runs.append({label: {"qps_cached": dnsperf(cluster, server, work / "cached.txt"),
                                 "qps_miss": dnsperf(cluster, server, work / "miss.txt"),
                                 "paced_cached": paced(cluster, server, "web.default.svc.cluster.local"),
                                 "paced_miss": paced(cluster, server, "unique")} for label, server in servers.items()})
        for label in servers:
            results[label] = {kind: spread([r[label][kind] for r in runs], 0) for kind in ("qps_cached", "qps_miss")}
            for kind in ("paced_cached", "paced_miss"):
                results[label][kind] = {q: spread([r[label][kind][q] for r in runs], 3) for q in ("p50_ms", "p99_ms")}
            print(f"{label}: {results[label]}", flush=True)
        for kind in ("qps_cached", "qps_miss"):
            results[f"ratio_{kind}"] = spread([r["k8semu"][kind] / r["dnsmasq"][kind] for r in runs], 3)
        print(f"ratios to dnsmasq: cached {results['ratio_qps_cached']}, miss {results['ratio_qps_miss']}")
    finally:
        cluster.down()
        shutil.rmtree(work, ignore_errors=True)
    save("dns", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
