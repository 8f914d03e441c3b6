#!/usr/bin/env python3
"""API benchmarks (issue: A Kubernetes API for the emulated cluster). Measures and reports.

    sudo .venv/bin/python bench/api.py [--pods 1000] [--samples 30]

On a 10-node cluster with ``--pods`` pods (one Deployment): latency of a list of every pod
through the API as the Python client does it (one HTTPS request, JSON) and as ``kubectl get
pods -A`` does it (a process, discovery from its cache, a Table), p50/p99 of ``--samples``; the
reference is the same list through k8semu's own CLI (``k8semu get pods -A``, a process that
lists through the same API with emulator/client and prints the same table), measured in the
same run. Then the delay from a change to a watcher seeing it: a
watch on the Deployment's pods is open, the Deployment is scaled up by one through the API, and
the time from the scale request being sent to the watch delivering the new pod (ADDED) is taken,
``--samples`` times (median and p99); and #12's own figure, from a pod becoming Ready to a
watcher seeing it (``ready_delay``). Then ``kubectl apply -f`` of 200 objects against ``k8semu
apply -f`` of the same file (created, then applied again unchanged). Last, on a 3-node cluster, the Deployment scaled 0 -> 100
-> 0 without watches, with ``--watches`` watches on the pods open, and without again: the time
until every pod runs (or is gone) and every switch confirmed the view, and the manager's CPU;
and ``kubectl port-forward``'s throughput: 64 MiB fetched from an HTTP server in a pod through
it, against the same server program on this machine's loopback (the reference, same run).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client as kclient, config as kconfig, watch  # noqa: E402

from bench.results import save, stamp  # noqa: E402
from bench.scale import write_spec  # noqa: E402
from tests.cluster import KUBECONFIG, KUBECTL, Cluster, k8semu, poll  # noqa: E402


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p99_ms": round(p99 * 1000, 1),
            "runs": len(ordered)}


def sample(fn, n: int) -> dict:
    times = []
    for _ in range(n):
        start = time.monotonic()
        fn()
        times.append(time.monotonic() - start)
    return percentiles(times)


def watch_delay(api: kclient.CoreV1Api, samples: int, replicas: int) -> dict:
    """Scale the bench Deployment up by one at a time; time from sending the scale request to the
    watch delivering the new pod."""
    apps = kclient.AppsV1Api(api.api_client)
    delays: list[float] = []
    for i in range(samples):
        listed = api.list_namespaced_pod("default", label_selector="app=bench")
        known = {p.metadata.name for p in listed.items}
        stream = watch.Watch()
        done = threading.Event()
        seen: list[float] = []

        def consume() -> None:
            for event in stream.stream(api.list_namespaced_pod, "default", label_selector="app=bench",
                                       resource_version=listed.metadata.resource_version, timeout_seconds=30):
                if event["type"] == "ADDED" and event["object"].metadata.name not in known:
                    seen.append(time.monotonic())
                    stream.stop()
                    break
            done.set()
        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        asked = time.monotonic()
        apps.patch_namespaced_deployment_scale("pods", "default", {"spec": {"replicas": replicas + i + 1}})
        done.wait(30)
        if seen:
            delays.append(seen[0] - asked)
    return percentiles(delays) if delays else {"runs": 0}


def ready_delay(api: kclient.CoreV1Api, samples: int) -> dict:
    """#12's figure: from a pod becoming Ready to a watcher seeing it. A pod without a readiness
    probe is Ready once its container runs; its container's first act is to print the time
    (``date +%s.%N``, this machine's clock), and the watch (one field-selected pod, read raw:
    one ``json.loads`` per event, so the client's model decoding stays out) takes the time it
    sees the Ready condition True. The container prints a little after the kubelet started it,
    so the figure can be short by the time ``sh`` takes to run ``date`` (about a millisecond)."""
    delays: list[float] = []
    for i in range(samples):
        name = f"ready-{i}"
        listed = api.list_namespaced_pod("default", field_selector=f"metadata.name={name}")
        stream = api.list_namespaced_pod("default", field_selector=f"metadata.name={name}", watch=True,
                                         resource_version=listed.metadata.resource_version, timeout_seconds=60,
                                         _preload_content=False)
        seen: list[float] = []

        def consume() -> None:
            pending = b""
            for chunk in stream.stream(65536):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    conditions = json.loads(line)["object"].get("status", {}).get("conditions", [])
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                        seen.append(time.time())
                        return
        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        api.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "command": ["sh", "-c", "date +%s.%N; exec sleep 3600"]}]}})
        thread.join(60)
        stream.close()
        if seen:
            delays.append(seen[0] - float(api.read_namespaced_pod_log(name, "default").split()[0]))
        api.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    return percentiles(delays) if delays else {"runs": 0}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scale_cycle(cluster: Cluster, apps: kclient.AppsV1Api, core: kclient.CoreV1Api, watchers: int,
                replicas: int) -> dict:
    """Scale 0 -> ``replicas`` -> 0 with ``watchers`` watches on the pods open: the time until
    every pod runs and every switch confirmed the view (and back), and the manager's CPU."""
    counts = [0] * watchers
    streams = [core.list_namespaced_pod("default", watch=True, timeout_seconds=300, _preload_content=False)
               for _ in range(watchers)]

    def consume(i: int) -> None:  # count the lines, not decode them: the client's own CPU stays out
        try:
            for chunk in streams[i].stream(65536):
                counts[i] += chunk.count(b"\n")
        except Exception:  # noqa: BLE001 - the stream is closed below
            pass
    threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(watchers)]
    for t in threads:
        t.start()
    pid = cluster.client.status()["pid"]
    cpu = cpu_seconds(pid)
    out = {"watchers": watchers}
    base = cluster.client.status()["pods"]  # kube-system's (the control plane's mirror pods)
    for phase, n in (("up_s", replicas), ("down_s", 0)):
        start = time.monotonic()
        apps.patch_namespaced_deployment_scale("pods", "default", {"spec": {"replicas": n}})
        poll(lambda: (lambda s: s["synced"] and s["running"] == s["pods"] == base + n)(cluster.client.status()),
             timeout=300, interval=0.02, what=f"{n} pods running and synced")
        out[phase] = round(time.monotonic() - start, 3)
    out["manager_cpu_s"] = round(cpu_seconds(pid) - cpu, 2)
    for s in streams:  # closed, not returned to the pool: the server must see each watch end
        s.shutdown()
        s.close()
    for t in threads:
        t.join(10)
    out["events_per_watcher"] = statistics.median(counts) if counts else 0
    return out


APPLY = """apiVersion: v1
kind: Service
metadata: {{name: s{i}, namespace: {ns}}}
spec: {{selector: {{app: a{i}}}, ports: [{{port: 80}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: d{i}, namespace: {ns}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: a{i}}}}}
  template:
    metadata: {{labels: {{app: a{i}}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"""


def apply_many(cluster: Cluster, work: Path, objects: int) -> dict:
    """``kubectl apply -f`` of ``objects`` objects (half Services, half Deployments at 0
    replicas) into a fresh namespace, against ``k8semu apply -f`` of the same file into another:
    wall time of each, then of applying the same file again (every object unchanged)."""
    out: dict = {"objects": objects}
    for tool in ("kubectl", "k8semu"):
        ns = f"apply-{tool}"
        k8semu("--cluster", cluster.name, "apply", "-f", "-",
               input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")
        path = work / f"{ns}.yaml"
        path.write_text("---\n".join(APPLY.format(i=i, ns=ns) for i in range(objects // 2)))
        argv = [KUBECTL, "apply", "-f", str(path)] if tool == "kubectl" else None
        for phase in ("create_s", "again_s"):
            start = time.monotonic()
            if argv:
                subprocess.run(argv, check=True, capture_output=True)
            else:
                k8semu("--cluster", cluster.name, "apply", "-f", str(path))
            out[f"{tool}_{phase}"] = round(time.monotonic() - start, 3)
    return out


SERVER = """import http.server, sys
size, block = int(sys.argv[2]), b"x" * 65536
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        left = size
        while left > 0:
            self.wfile.write(block[:min(left, 65536)])
            left -= 65536
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[3])), Handler).serve_forever()
"""


def fetch_rate(port: int, samples: int) -> float:
    """Median MB/s of fetching the server's bytes from 127.0.0.1:``port``."""
    rates = []
    for _ in range(samples):
        start = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as response:
            got = 0
            while chunk := response.read(1 << 20):
                got += len(chunk)
        rates.append(got / 1e6 / (time.monotonic() - start))
    return round(statistics.median(rates), 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rate_once_up(port: int, samples: int, what: str) -> float:
    """``fetch_rate`` once a request to 127.0.0.1:``port`` succeeds."""
    poll(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"]).returncode == 0,
         what=what)
    return fetch_rate(port, samples)


def port_forward(size: int = 64 << 20, samples: int = 3) -> dict:
    """MB/s through ``kubectl port-forward`` from a pod, and from the same server on loopback."""
    port = free_port()
    local = subprocess.Popen([sys.executable, "-c", SERVER, "127.0.0.1", str(size), str(port)])
    out: dict = {"bytes": size}
    try:
        out["loopback_MBps"] = rate_once_up(port, samples, "the loopback server")
    finally:
        local.terminate()
        local.wait()
    subprocess.run([KUBECTL, "run", "pf-bench", "--image=busybox", "--", "python3", "-c", SERVER, "0.0.0.0",
                    str(size), "9000"], check=True, capture_output=True)
    subprocess.run([KUBECTL, "wait", "--for=condition=Ready", "pod/pf-bench", "--timeout=60s"], check=True,
                   capture_output=True)
    port = free_port()
    forward = subprocess.Popen([KUBECTL, "port-forward", "--address", "127.0.0.1", "pod/pf-bench", f"{port}:9000"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        forward.stdout.readline()  # "Forwarding from ...": listening
        out["port_forward_MBps"] = rate_once_up(port, samples, "the server in the pod")
    finally:
        forward.terminate()
        forward.wait()
    out["ratio_to_loopback"] = round(out["port_forward_MBps"] / out["loopback_MBps"], 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--watches", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        spec = write_spec(Path(work), "bench-api", 10, args.pods)
        cluster = Cluster(str(spec)).up()
        try:
            api = kclient.CoreV1Api(kconfig.new_client_from_config(str(KUBECONFIG)))
            count = len(api.list_pod_for_all_namespaces(_preload_content=False).data)
            results = {
                **stamp(), "pods": args.pods, "list_bytes": count,
                "python_client_list": sample(lambda: api.list_pod_for_all_namespaces(_preload_content=False).data,
                                             args.samples),
                "kubectl_get_pods_A": sample(lambda: subprocess.run([KUBECTL, "get", "pods", "-A"], check=True,
                                                                    capture_output=True), args.samples),
                "k8semu_get_pods_A": sample(lambda: k8semu("--cluster", cluster.name, "get", "pods", "-A"),
                                            args.samples),
            }
            results["ready_to_watcher"] = ready_delay(api, args.samples)
            results["watch_delay_after_scale"] = watch_delay(api, args.samples, args.pods)
            results["apply_200"] = apply_many(cluster, Path(work), 200)
        finally:
            cluster.down()
        spec = write_spec(Path(work), "bench-watch", 3, 0)
        cluster = Cluster(str(spec)).up()
        try:
            configuration = kclient.Configuration()
            kconfig.load_kube_config(config_file=str(KUBECONFIG), client_configuration=configuration)
            configuration.connection_pool_maxsize = args.watches + 8  # one connection per watch
            api_client = kclient.ApiClient(configuration)
            core, apps = kclient.CoreV1Api(api_client), kclient.AppsV1Api(api_client)
            results["scale_0_100_0"] = [scale_cycle(cluster, apps, core, n, 100) for n in (0, args.watches, 0)]
            results["port_forward"] = port_forward()
        finally:
            cluster.down()
    print(results)
    print(f"saved {save('api', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
