"""StatefulSets and DaemonSets through kubectl on a live cluster: the StatefulSet tutorial's
stable names (hostnames and DNS records behind the headless Service) that follow scaling, an
ordered rolling update, and a DaemonSet that covers every node it tolerates, rolls node by node
and stays through a drain."""
from __future__ import annotations

import json
import re

import pytest

from tests.cluster import k8semu, kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/default.yaml")

# the headless Service and StatefulSet of the Kubernetes tutorial "StatefulSet Basics"
WEB = """apiVersion: v1
kind: Service
metadata: {name: nginx, labels: {app: nginx}}
spec:
  ports: [{port: 80, name: web}]
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: nginx}}
  serviceName: nginx
  replicas: 3
  template:
    metadata: {labels: {app: nginx}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports: [{containerPort: 80, name: web}]
"""
AGENT = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {name: agent}}
  template:
    metadata: {labels: {name: agent}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
      containers: [{name: agent, image: busybox, command: [sleep, infinity]}]
"""


def pods(selector: str, namespace: str = "default") -> list[dict]:
    items = json.loads(kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
    return sorted((p for p in items if not p["metadata"].get("deletionTimestamp")), key=lambda p: p["metadata"]["name"])


def resolve(name: str) -> str:
    """The address ``client`` gets for ``name`` ("" when it gets none)."""
    done = kubectl("exec", "client", "--", "nslookup", name, check=False)
    answer = done.stdout.split("Name:", 1)[-1] if "Name:" in done.stdout else ""
    return next((line.split()[-1] for line in answer.splitlines() if line.startswith("Address")), "")


def events(kind: str, name: str, reason: str) -> list[str]:
    items = json.loads(kubectl("get", "events", "--field-selector",
                               f"involvedObject.kind={kind},involvedObject.name={name},reason={reason}",
                               "-o", "json").stdout)["items"]
    return [e["message"] for e in sorted(items, key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))]


def test_statefulset_pods_keep_their_names_in_dns_and_scale_down_from_the_top(cluster):
    kubectl("apply", "-f", "-", input=WEB)
    kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
    web = pods("app=nginx")
    assert [p["metadata"]["name"] for p in web] == ["web-0", "web-1", "web-2"]
    assert events("StatefulSet", "web", "SuccessfulCreate") == [
        f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]
    for i, pod in enumerate(web):
        assert kubectl("exec", f"web-{i}", "--", "hostname").stdout.strip() == f"web-{i}"
        poll(lambda: resolve(f"web-{i}.nginx") == pod["status"]["podIP"], timeout=10,
             what=f"web-{i}.nginx to resolve to its pod")
    assert kubectl("get", "sts", "web", "--no-headers").stdout.split()[:2] == ["web", "3/3"]
    kubectl("scale", "sts", "web", "--replicas=1")
    poll(lambda: [p["metadata"]["name"] for p in pods("app=nginx")] == ["web-0"], timeout=30,
         what="web-2 then web-1 to go")
    assert events("StatefulSet", "web", "SuccessfulDelete") == [
        "delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful"]
    poll(lambda: resolve("web-2.nginx") == "", timeout=10, what="web-2.nginx to stop resolving")
    assert resolve("web-0.nginx") == pods("app=nginx")[0]["status"]["podIP"]
    kubectl("scale", "sts", "web", "--replicas=3")
    kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
    # deleting a pod waits for that pod, not for its successor of the same name (by uid, as kubectl)
    uid = pods("app=nginx")[1]["metadata"]["uid"]
    k8semu("--cluster", cluster.name, "delete", "pod", "web-1", timeout=60)
    poll(lambda: [p["metadata"]["uid"] for p in pods("app=nginx") if p["metadata"]["name"] == "web-1"] not in ([], [uid]),
         timeout=30, what="web-1 made again")


def test_statefulset_rolling_update_replaces_pods_from_the_highest_ordinal(cluster):
    roll = WEB.split("---\n")[1].replace("app: nginx", "app: roll").replace("name: web}", "name: roll}")
    kubectl("apply", "-f", "-", input=roll)
    kubectl("rollout", "status", "statefulset/roll", "--timeout=60s")
    kubectl("set", "image", "statefulset/roll", "nginx=nginx")
    done = kubectl("rollout", "status", "statefulset/roll", "--timeout=60s")
    assert "partitioned roll out complete: 3 new pods have been updated" in done.stdout
    status = json.loads(kubectl("get", "sts", "roll", "-o", "json").stdout)["status"]
    assert status["currentRevision"] == status["updateRevision"] and status["updatedReplicas"] == 3
    new = pods("app=roll")
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in new} == {status["updateRevision"]}
    assert {p["spec"]["containers"][0]["image"] for p in new} == {"nginx"}
    assert events("StatefulSet", "roll", "SuccessfulDelete") == [
        f"delete Pod roll-{i} in StatefulSet roll successful" for i in (2, 1, 0)]


def test_daemonset_covers_every_node_rolls_node_by_node_and_stays_through_a_drain(cluster):
    kubectl("apply", "-f", "-", input=AGENT)
    kubectl("rollout", "status", "daemonset/agent", "-n", "kube-system", "--timeout=60s")
    nodes = sorted(n["metadata"]["name"] for n in json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"])
    assert sorted(p["spec"]["nodeName"] for p in pods("name=agent", "kube-system")) == nodes
    row = kubectl("get", "ds", "agent", "-n", "kube-system", "--no-headers").stdout.split()
    assert row[:7] == ["agent", "3", "3", "3", "3", "3", "<none>"]
    first = {p["metadata"]["name"] for p in pods("name=agent", "kube-system")}
    kubectl("set", "image", "ds/agent", "-n", "kube-system", "agent=alpine")
    done = kubectl("rollout", "status", "daemonset/agent", "-n", "kube-system", "--timeout=60s")
    assert 'daemon set "agent" successfully rolled out' in done.stdout
    now = pods("name=agent", "kube-system")
    assert not first & {p["metadata"]["name"] for p in now} and len(now) == 3
    assert {p["spec"]["containers"][0]["image"] for p in now} == {"alpine"}
    client = json.loads(kubectl("get", "pod", "client", "-o", "json").stdout)["spec"]["nodeName"]
    worker = next(n for n in ("worker-1", "worker-2") if n != client)  # a bare pod would stop the drain
    on_worker = next(p["metadata"]["name"] for p in now if p["spec"]["nodeName"] == worker)
    try:
        drained = kubectl("drain", worker, "--ignore-daemonsets", "--timeout=60s")
        assert re.search(rf"ignoring DaemonSet-managed Pods: .*kube-system/{on_worker}", drained.stderr)
        assert on_worker in {p["metadata"]["name"] for p in pods("name=agent", "kube-system")}
    finally:
        kubectl("uncordon", worker)
    kubectl("delete", "ds", "agent", "-n", "kube-system")
    poll(lambda: not pods("name=agent", "kube-system"), timeout=30, what="the DaemonSet's pods to go")


def test_rollout_history_and_undo_read_the_controller_revisions(cluster):
    """``kubectl rollout history`` lists a StatefulSet's and a DaemonSet's ControllerRevisions,
    ``--revision`` shows one's template, and ``rollout undo`` puts the previous one back (its
    revision renumbered to the next, as the controller does)."""
    hist = WEB.split("---\n")[1].replace("app: nginx", "app: hist").replace("name: web}", "name: hist}")
    hist = hist.replace("replicas: 3", "replicas: 1")
    kubectl("apply", "-f", "-", input=hist)
    kubectl("rollout", "status", "statefulset/hist", "--timeout=60s")
    kubectl("set", "image", "statefulset/hist", "nginx=nginx")
    kubectl("rollout", "status", "statefulset/hist", "--timeout=60s")
    history = kubectl("rollout", "history", "statefulset/hist").stdout
    assert re.search(r"REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>", history), history
    assert "Image:\tregistry.k8s.io/nginx-slim:0.24" in kubectl("rollout", "history", "statefulset/hist",
                                                                "--revision=1").stdout
    assert "rolled back" in kubectl("rollout", "undo", "statefulset/hist").stdout
    kubectl("rollout", "status", "statefulset/hist", "--timeout=60s")
    assert {p["spec"]["containers"][0]["image"] for p in pods("app=hist")} == {"registry.k8s.io/nginx-slim:0.24"}
    assert re.search(r"\n2\s+<none>\n3\s+<none>", kubectl("rollout", "history", "statefulset/hist").stdout)
    agent = AGENT.replace("name: agent", "name: hist-agent")
    kubectl("apply", "-f", "-", input=agent)
    kubectl("set", "image", "ds/hist-agent", "-n", "kube-system", "hist-agent=alpine")
    kubectl("rollout", "status", "daemonset/hist-agent", "-n", "kube-system", "--timeout=60s")
    revisions = kubectl("get", "controllerrevisions", "-n", "kube-system", "-l", "name=hist-agent").stdout
    assert re.search(r"hist-agent-\w+\s+daemonset.apps/hist-agent\s+2", revisions), revisions
    kubectl("rollout", "undo", "daemonset/hist-agent", "-n", "kube-system")
    kubectl("rollout", "status", "daemonset/hist-agent", "-n", "kube-system", "--timeout=60s")
    assert {p["spec"]["containers"][0]["image"] for p in pods("name=hist-agent", "kube-system")} == {"busybox"}
    kubectl("delete", "sts", "hist")
    kubectl("delete", "ds", "hist-agent", "-n", "kube-system")


SLOW = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: slow}
spec:
  selector: {matchLabels: {app: slow}}
  serviceName: slow
  replicas: 2
  minReadySeconds: 2
  template:
    metadata: {labels: {app: slow}}
    spec:
      containers: [{name: web, image: nginx}]
"""


def test_statefulset_min_ready_seconds_starts_the_next_pod_once_the_last_is_available(cluster):
    kubectl("apply", "-f", "-", input=SLOW)

    def first_ready() -> bool:
        pod = json.loads(kubectl("get", "pods", "-l", "app=slow", "-o", "json").stdout)["items"]
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for p in pod if p["metadata"]["name"] == "slow-0" for c in p["status"].get("conditions", []))
    poll(first_ready, timeout=30, what="slow-0 ready")
    shown = json.loads(kubectl("get", "sts", "slow", "-o", "json").stdout)
    assert shown["spec"]["minReadySeconds"] == 2
    assert kubectl("get", "pod", "slow-1", check=False).returncode == 1  # ready is not yet available
    assert shown["status"].get("availableReplicas", 0) == 0 and shown["status"]["readyReplicas"] == 1
    done = kubectl("rollout", "status", "sts/slow", "--timeout=60s", timeout=70)
    assert "complete" in done.stdout
    poll(lambda: json.loads(kubectl("get", "sts", "slow", "-o", "json").stdout)["status"].get("availableReplicas") == 2,
         timeout=30, what="both available")
    kubectl("delete", "sts", "slow")
