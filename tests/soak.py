#!/usr/bin/env python3
"""Soak test (issue: Contain what runs as root): a random, bounded sequence of changes and faults
against one cluster, with the invariants checked after every step.

    sudo .venv/bin/python tests/soak.py [--minutes 10] [--seed N]      (make soak)

Steps, chosen at random: apply or delete a Deployment and its Service, scale one, delete a pod,
apply or delete a NetworkPolicy, kill -9 the controller, kill -9 a container's process, take a
node's eth0 down and up again. After each step:
- the data plane is in sync within SYNC_BOUND seconds (every switch confirms the latest view,
  every DNS server has the latest snapshot), and every Deployment has its replicas Running;
- no InternalError event (the manager never failed a tick).
Every minute the manager's and controller's memory (RSS) are sampled; at the end the last
sample may exceed the first (after warm-up) by at most MEMORY_GROWTH. After ``down``, nothing
of the cluster is left: namespaces, links, bridges, processes, cgroups.
Exits 1 with the failing invariant, 0 with a summary. Nothing outside the cluster is loaded.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster import Cluster, k8semu, poll  # noqa: E402
from tests.integration.test_teardown import leftovers, snapshot  # noqa: E402

SYNC_BOUND = 30.0  # seconds for the data plane to confirm a change (and replacement pods to run)
MEMORY_GROWTH = 1.25  # last RSS sample / first sample after warm-up, at most
SPEC = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {name: soak}
spec:
  nodes: [{name: cp, role: control-plane}, {name: w, count: 3}]
"""


def deployment(name: str, replicas: int) -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n"
            f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
            f"    spec: {{containers: [{{name: c, image: k8semu/echo}}]}}\n---\n"
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
            f"spec: {{selector: {{app: {name}}}, ports: [{{port: 80}}]}}\n")


def policy(name: str, app: str) -> str:
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}}}\n"
            f"spec:\n  podSelector: {{matchLabels: {{app: {app}}}}}\n"
            f"  ingress: [{{from: [{{podSelector: {{}}}}], ports: [{{port: 80}}]}}]\n")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Soak:
    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster, self.rng = cluster, rng
        self.deployments: dict[str, int] = {}
        self.policies: set[str] = set()
        self.counter = 0
        self.steps: dict[str, int] = {}

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return k8semu("--cluster", self.cluster.name, *args, **kw)

    # -- steps -----------------------------------------------------------------------------
    def add_deployment(self) -> None:
        if len(self.deployments) >= 4:
            return self.delete_deployment()
        self.counter += 1
        name, replicas = f"app{self.counter}", self.rng.randint(1, 6)
        self.cluster.apply(deployment(name, replicas))
        self.deployments[name] = replicas

    def delete_deployment(self) -> None:
        if not self.deployments:
            return self.add_deployment()
        name = self.rng.choice(sorted(self.deployments))
        self.kubectl("delete", "deployment", name)
        self.kubectl("delete", "service", name)
        del self.deployments[name]
        for p in [p for p in self.policies if p.endswith(f"-{name}")]:
            self.kubectl("delete", "networkpolicy", p)
            self.policies.discard(p)

    def scale(self) -> None:
        if not self.deployments:
            return self.add_deployment()
        name = self.rng.choice(sorted(self.deployments))
        replicas = self.rng.randint(0, 8)
        self.kubectl("scale", f"deployment/{name}", "--replicas", str(replicas))
        self.deployments[name] = replicas

    def delete_pod(self) -> None:
        pods = [p["metadata"]["name"] for p in self.cluster.client.get("Pod", "default")
                if not p["metadata"].get("deletionTimestamp")]
        if pods:
            self.kubectl("delete", "pod", self.rng.choice(pods), "--wait=false")

    def toggle_policy(self) -> None:
        if self.policies and self.rng.random() < 0.5:
            name = self.rng.choice(sorted(self.policies))
            self.kubectl("delete", "networkpolicy", name)
            self.policies.discard(name)
        elif self.deployments:
            app = self.rng.choice(sorted(self.deployments))
            name = f"p{self.rng.randint(1, 3)}-{app}"
            self.cluster.apply(policy(name, app))
            self.policies.add(name)

    def kill_controller(self) -> None:
        pid = self.cluster.client.status()["helpers"]["controller"]["pid"]
        if pid:
            os.kill(pid, signal.SIGKILL)
            # the supervisor restarts it after its back-off (up to 30 s in a crash loop)
            poll(lambda: self.cluster.client.status()["helpers"]["controller"]["pid"] not in (None, pid),
                 timeout=35, what="the controller to be restarted")

    def kill_container(self) -> None:
        pods = [p for p in self.cluster.client.get("Pod", "default") if p["status"].get("phase") == "Running"]
        if pods:
            info = self.cluster.client.pod(self.rng.choice(pods)["metadata"]["name"], "default")
            pid = next(iter(info["pids"].values()), None)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def flap_node(self) -> None:
        node = self.rng.choice(["w-1", "w-2", "w-3"])
        netns = self.cluster.netns(node)
        subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "down"], check=True)
        poll(lambda: any(n["metadata"]["name"] == node and n["status"]["conditions"][-1]["status"] == "False"
                         for n in self.cluster.client.get("Node")), timeout=10, what=f"{node} NotReady")
        subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "up"], check=True)

    STEPS = ("add_deployment", "delete_deployment", "scale", "scale", "delete_pod", "toggle_policy",
             "kill_controller", "kill_container", "flap_node")

    def step(self) -> str:
        name = self.rng.choice(self.STEPS)
        getattr(self, name)()
        self.steps[name] = self.steps.get(name, 0) + 1
        return name

    # -- invariants ------------------------------------------------------------------------
    def check(self, what: str) -> None:
        def settled() -> bool:
            status = self.cluster.client.status()
            if not status["synced"]:
                return False
            pods = [p for p in self.cluster.client.get("Pod", "default") if not p["metadata"].get("deletionTimestamp")]
            for name, replicas in self.deployments.items():
                mine = [p for p in pods if p["metadata"]["labels"].get("app") == name]
                if len(mine) != replicas or any(p["status"].get("phase") != "Running" for p in mine):
                    return False
            return True
        try:
            poll(settled, timeout=SYNC_BOUND, interval=0.1, what=f"the cluster to settle after {what}")
        except AssertionError as exc:
            status = self.cluster.client.status()
            pods = [(p["metadata"]["name"], p["status"].get("phase"), bool(p["metadata"].get("deletionTimestamp")))
                    for p in self.cluster.client.get("Pod", "default")]
            raise AssertionError(f"{exc}\nwanted {self.deployments}; synced {status['synced']}, generation "
                                 f"{status['generation']}, problems {status.get('problems')}; pods {pods}") from None
        errors = [e for e in self.cluster.client.events() if e["reason"] == "InternalError"]
        if errors:
            raise AssertionError(f"after {what}: the manager failed a tick: {errors[-1]['message']}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"soak: seed {args.seed}, {args.minutes} minutes", flush=True)
    before = snapshot()
    workdir = ROOT / "tests" / ".soak"
    workdir.mkdir(exist_ok=True)
    (workdir / "soak.yaml").write_text(SPEC)
    cluster = Cluster(str(workdir / "soak.yaml")).up()
    soak = Soak(cluster, rng)
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + args.minutes * 60
    warm = time.monotonic() + min(60, args.minutes * 60 / 4)
    next_sample, steps = warm, 0
    try:
        while time.monotonic() < deadline:
            name = soak.step()
            soak.check(name)
            steps += 1
            if time.monotonic() >= next_sample:
                status = cluster.client.status()
                samples.append((rss_kib(status["pid"]), rss_kib(status["helpers"]["controller"]["pid"])))
                next_sample = time.monotonic() + 60
        if len(samples) >= 2:
            for i, who in enumerate(("manager", "controller")):
                first, last = samples[0][i], samples[-1][i]
                if last > first * MEMORY_GROWTH:
                    raise AssertionError(f"{who} memory grew from {first} KiB to {last} KiB over the run")
    except BaseException:
        for name in ("manager.log", "controller.log", "shim.log"):
            if (cluster.run / name).exists():
                (workdir / name).write_bytes((cluster.run / name).read_bytes())
        events = cluster.client.events()
        (workdir / "events.json").write_text(json.dumps(events, indent=1))
        print(f"soak: logs and events saved in {workdir}", file=sys.stderr)
        raise
    finally:
        cluster.down()
    left = leftovers(before)
    if left:
        raise AssertionError(f"left after down: {json.dumps({k: sorted(map(str, v)) for k, v in left.items()})}")
    print(f"soak: {steps} steps ({', '.join(f'{k} {v}' for k, v in sorted(soak.steps.items()))}); memory samples "
          f"(manager, controller KiB): {samples}; nothing left after down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
