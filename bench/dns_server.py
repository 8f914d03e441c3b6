#!/usr/bin/env python3
"""The DNS server alone against dnsmasq, on loopback in a private network namespace.

    sudo .venv/bin/python bench/dns_server.py [--runs 3] [--seconds 5]

Why beside bench/cluster_dns.py: in a cluster, dnsperf runs in a pod and its packets cross Open
vSwitch's userspace datapath, which on this machine caps both servers near the same rate, so
the in-cluster ratio says little about the server. Here both serve the same name on 127.0.0.1
in a network namespace of their own (``unshare -n``: nothing reaches the machine's interfaces),
k8semu's server with kubeadm's Corefile and a snapshot of three Services, dnsmasq 2.90 from a
hosts file; dnsperf 100 outstanding for ``--seconds``, a cached name and then misses (a new
nonexistent cluster name each query). Each figure is the median of ``--runs`` runs with min and
max; servers alternate within a run so both see the same machine state. Measures; never fails.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp  # noqa: E402
from emulator.model.corefile import default_corefile  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
SNAPSHOT = {
    "namespaces": ["default", "kube-system"],
    "services": [{"name": "web", "namespace": "default", "type": "ClusterIP", "cluster_ip": "10.96.5.5",
                  "external_name": "", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "endpoints": []}],
    "pods": []}

INSIDE = r"""
set -e
ip link set lo up
"$PYTHON" -m emulator.dns.server -conf "$WORK/Corefile" -snapshot "$WORK/snap.json" >"$WORK/server.log" 2>&1 &
S=$!
dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$WORK/hosts" --local=/cluster.local/ \
  --cache-size=10000 --port=15354 --user=root --listen-address=127.0.0.1 --bind-interfaces 2>/dev/null &
D=$!
trap 'kill $S $D' EXIT
for i in $(seq 100); do
  dig +short +time=1 -p 15353 @127.0.0.1 web.default.svc.cluster.local | grep -q 10.96 && break; sleep 0.1
done
for f in cached miss; do for p in 15353 15354; do
  echo "$f $p $(dnsperf -s 127.0.0.1 -p $p -d "$WORK/$f.txt" -l "$SECONDS_" -q 100 -c 1 | grep 'Queries per second')"
done; done
"""


def one_run(work: Path, seconds: int) -> dict:
    out = subprocess.run(["unshare", "-n", "bash", "-c", INSIDE], capture_output=True, text=True, timeout=seconds * 4 + 60,
                         cwd=ROOT, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHON": PYTHON, "WORK": str(work),
                                        "SECONDS_": str(seconds), "PYTHONPATH": str(ROOT)}).stdout
    found = {}
    for kind, port, qps in re.findall(r"^(\w+) (\d+)\s+Queries per second:\s+([\d.]+)", out, re.M):
        found[("k8semu" if port == "15353" else "dnsmasq", kind)] = float(qps)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="k8semu-dnsbench-"))
    try:
        corefile = default_corefile("cluster.local").replace(".:53", ".:15353")
        (work / "Corefile").write_text(corefile.replace("forward . /etc/resolv.conf", "forward . 127.0.0.1:9")
                                       .replace("prometheus :9153", "prometheus 127.0.0.1:19153"))
        (work / "snap.json").write_text(json.dumps(SNAPSHOT))
        (work / "hosts").write_text("10.96.5.5 web.default.svc.cluster.local\n")
        (work / "cached.txt").write_text("web.default.svc.cluster.local A\n")
        (work / "miss.txt").write_text("".join(f"m{i}.default.svc.cluster.local A\n" for i in range(400000)))
        runs = [one_run(work, args.seconds) for _ in range(args.runs)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results: dict = stamp()
    for server in ("k8semu", "dnsmasq"):
        for kind in ("cached", "miss"):
            values = [r[(server, kind)] for r in runs if (server, kind) in r]
            if values:
                results[f"{server}_{kind}"] = spread(values, 0)
    for kind in ("cached", "miss"):
        ratios = [r[("k8semu", kind)] / r[("dnsmasq", kind)] for r in runs
                  if ("k8semu", kind) in r and ("dnsmasq", kind) in r]
        if ratios:
            results[f"ratio_{kind}"] = spread(ratios, 3)
    print(json.dumps(results, indent=1))
    save("dns_server", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
