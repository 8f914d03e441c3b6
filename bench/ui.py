#!/usr/bin/env python3
"""The web view (issue #15): how long a pod turning Ready takes to reach an open page, and what
the UI server costs with 1,000 pods. Measures and reports; never fails on a slow machine.

    sudo .venv/bin/python bench/ui.py [--runs N] [--pods 1000]

1. Delay, on topologies/services.yaml: ``k8semu ui`` runs as a user runs it; this script reads its
   event stream (as the page does). A pod is created; the delay is from the moment the API first
   shows it Ready (polled every 5 ms) to the first ``picture`` event counting it ready. The
   reference, same run: the poll interval (250 ms) the server works to.
2. CPU, on a 10-node cluster of ``--pods`` busybox pods (bench/scale.py's spec): the UI server's
   CPU share (user + system time from /proc over 20 s of wall time) idle, and the time Graphviz
   takes to draw that picture once (the cost of each redraw); the reference is the same server
   on the 17-pod services cluster.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RUNS, save, spread, stamp, text  # noqa: E402
from bench.scale import write_spec  # noqa: E402
from emulator.client import diagram  # noqa: E402
from tests.cluster import Cluster, k8semu, poll  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class Ui:
    """``k8semu ui`` as a process, and its event stream read on a thread: (time, ready count)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "emulator", "ui"], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        url = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", self.proc.stdout.readline())
        self.port, self.token = int(url.group(1)), url.group(2)
        self.pictures: list[tuple[float, int]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        conn.request("GET", f"/events?token={self.token}")
        response = conn.getresponse()
        kind = ""
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "picture":
                self.pictures.append((time.monotonic(), json.loads(line[6:])["ready"]))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def delay(cluster: Cluster, ui: Ui, i: int) -> float:
    """Seconds from the API showing a new pod Ready to the page's picture counting it."""
    ready = lambda p: any(c["type"] == "Ready" and c["status"] == "True"  # noqa: E731
                          for c in p.get("status", {}).get("conditions", []))
    poll(lambda: ui.pictures, timeout=10, what="the first picture")
    before = ui.pictures[-1][1]
    name = f"newcomer-{i}"
    cluster.apply(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n"
                  f"spec: {{containers: [{{name: c, image: busybox}}]}}\n")
    poll(lambda: any(p["metadata"]["name"] == name and ready(p) for p in cluster.client.get("Pod", "default")),
         timeout=30, interval=0.005, what="the pod Ready in the API")
    at = time.monotonic()
    shown = poll(lambda: next((t for t, n in ui.pictures if t >= at - 1 and n > before), None), timeout=10,
                 interval=0.005, what="the page counting it")
    k8semu("delete", "pod", name, "--grace-period", "0", "--force")
    poll(lambda: ui.pictures[-1][1] == before, timeout=10, what="the page without it")
    return max(0.0, shown - at)


def idle_cpu(ui: Ui, seconds: float = 20) -> float:
    """The server's CPU share over ``seconds`` of wall time (1.0 = one core)."""
    start_cpu, start = ui.cpu_seconds(), time.monotonic()
    time.sleep(seconds)  # a measuring window, not a wait for a condition
    return (ui.cpu_seconds() - start_cpu) / (time.monotonic() - start)


def draw_ms(cluster: Cluster) -> float:
    snap = diagram.Snapshot.take(cluster.client)
    begin = time.perf_counter()
    diagram.render(diagram.dot(snap), "svg")
    return (time.perf_counter() - begin) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--pods", type=int, default=1000)
    args = parser.parse_args()
    cluster = Cluster("topologies/services.yaml").up()
    try:
        cluster.synced(timeout=60)
        ui = Ui()
        try:
            delays = [delay(cluster, ui, i) for i in range(max(5, args.runs))]
            small_cpu, small_draw = idle_cpu(ui), draw_ms(cluster)
        finally:
            ui.close()
    finally:
        cluster.down()
    with tempfile.TemporaryDirectory() as tmp:
        big = Cluster(str(write_spec(Path(tmp), "uibench", 10, args.pods))).up()
        try:
            ui = Ui()
            try:
                poll(lambda: ui.pictures and ui.pictures[-1][1] >= args.pods, timeout=120, what="every pod drawn")
                big_cpu, big_draw = idle_cpu(ui), draw_ms(big)
            finally:
                ui.close()
        finally:
            big.down()
    results = {**stamp(), "delay_s": spread(delays, 3), "poll_s": 0.25,
               "cpu_17_pods": round(small_cpu, 3), "draw_ms_17_pods": round(small_draw, 1),
               f"cpu_{args.pods}_pods": round(big_cpu, 3), f"draw_ms_{args.pods}_pods": round(big_draw, 1)}
    print(f"pod Ready in the API -> on the page: {text(results['delay_s'], ' s')} (poll interval 0.25 s; target < 1 s)")
    print(f"UI server CPU, idle: 17 pods {small_cpu:.1%} of a core, {args.pods} pods {big_cpu:.1%}; one redraw "
          f"(dot, SVG): {small_draw:.0f} ms and {big_draw:.0f} ms", flush=True)
    save("ui", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
