"""Rollouts through kubectl on a live cluster: RollingUpdate keeps the old pods serving while the
new ones are not ready, ``kubectl rollout status`` says how far it got, undo goes back; Recreate
replaces every pod."""
from __future__ import annotations

import json
import time

import pytest

from tests.cluster import kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/default.yaml")

APP = """apiVersion: apps/v1
kind: Deployment
metadata: {name: roll}
spec:
  replicas: 3
  selector: {matchLabels: {app: roll}}
  template:
    metadata: {labels: {app: roll}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: roll}
spec:
  selector: {app: roll}
  ports: [{port: 80}]
"""
NEVER_READY = json.dumps([{"op": "add", "path": "/spec/template/spec/containers/0/readinessProbe",
                           "value": {"exec": {"command": ["false"]}, "periodSeconds": 1}}])


def replicasets() -> dict[str, tuple[int, int]]:
    """name -> (spec.replicas, ready pods) of the Deployment's ReplicaSets."""
    items = json.loads(kubectl("get", "rs", "-l", "app=roll", "-o", "json").stdout)["items"]
    return {i["metadata"]["name"]: (i["spec"]["replicas"], i["status"].get("readyReplicas", 0)) for i in items}


def ready_endpoints() -> set[str]:
    subsets = json.loads(kubectl("get", "endpoints", "roll", "-o", "json").stdout).get("subsets", [])
    return {a["ip"] for s in subsets for a in s.get("addresses", [])}


def failed_probes(pod_prefix: str) -> int:
    events = json.loads(kubectl("get", "events", "--field-selector", "reason=Unhealthy", "-o", "json").stdout)
    return sum(e.get("count", 1) for e in events["items"] if e["involvedObject"]["name"].startswith(pod_prefix)
               and e["message"].startswith("Readiness probe failed"))


def rolled_out() -> None:
    """``kubectl rollout status`` succeeds; if not, what the Deployment and its pods showed."""
    done = kubectl("rollout", "status", "deployment/roll", "--timeout=60s", check=False)
    assert done.returncode == 0, (done.stdout, done.stderr, kubectl("get", "deploy", "roll", "-o", "json").stdout,
                                  kubectl("get", "pods", "-l", "app=roll", "-o", "wide").stdout)


def test_a_rollout_whose_new_pods_never_get_ready_keeps_the_old_ones_serving(cluster):
    kubectl("apply", "-f", "-", input=APP)
    rolled_out()
    (first,) = replicasets()
    serving = ready_endpoints()
    assert len(serving) == 3
    kubectl("patch", "deployment", "roll", "--type=json", "-p", NEVER_READY)
    new = poll(lambda: next((n for n in replicasets() if n != first), None), what="the new ReplicaSet")
    poll(lambda: failed_probes(new) >= 2, timeout=30, what="the new pod's readiness probe to fail twice")
    # maxSurge 25% of 3 -> 1, maxUnavailable 25% of 3 -> 0: one new pod, no old one may go
    assert replicasets() == {first: (3, 3), new: (1, 0)}
    assert ready_endpoints() == serving
    done = kubectl("rollout", "status", "deployment/roll", "--timeout=1s", check=False)
    assert done.returncode != 0 and "1 out of 3 new replicas have been updated" in done.stdout
    kubectl("rollout", "undo", "deployment/roll")
    poll(lambda: replicasets() == {first: (3, 3), new: (0, 0)}, timeout=30, what="the undo")
    assert ready_endpoints() == serving  # the old pods were never replaced


def test_a_rolling_update_finishes_step_by_step_as_pods_get_ready(cluster):
    """3 replicas, surge 1, none unavailable: three steps, each started by a new pod's readiness."""
    kubectl("apply", "-f", "-", input=APP)
    rolled_out()
    kubectl("set", "image", "deployment/roll", "web=nginx:1.26")
    rolled_out()
    (new,) = [n for n, (replicas, ready) in replicasets().items() if replicas == 3 and ready == 3]
    steps = [e["message"] for e in json.loads(kubectl("get", "events", "--field-selector",
                                                      "reason=ScalingReplicaSet,involvedObject.name=roll",
                                                      "-o", "json").stdout)["items"] if new in e["message"]]
    assert [m.split(" to ")[1].split()[0] for m in steps if "Scaled up" in m][-3:] == ["1", "2", "3"], steps


def test_recreate_replaces_every_pod(cluster):
    kubectl("apply", "-f", "-", input=APP.replace("  replicas: 3\n", "  replicas: 3\n  strategy: {type: Recreate}\n"))
    rolled_out()
    before = ready_endpoints()
    kubectl("set", "image", "deployment/roll", "web=nginx:1.27")
    rolled_out()
    after = poll(lambda: (lambda eps: eps if len(eps) == 3 else None)(ready_endpoints()), what="three new endpoints")
    assert not before & after
    describe = kubectl("describe", "deployment", "roll").stdout
    assert "StrategyType:" in describe and "Recreate" in describe


def test_kubectl_wait_for_available_and_the_conditions_describe_shows(cluster):
    """``kubectl wait --for=condition=Available`` returns once the pods are ready; while a new
    template's pods never get ready, Progressing says which ReplicaSet is progressing."""
    kubectl("apply", "-f", "-", input=APP.replace("roll", "waited"))
    done = kubectl("wait", "--for=condition=Available", "deployment/waited", "--timeout=60s")
    assert done.stdout.strip() == "deployment.apps/waited condition met"

    def conditions() -> dict[str, dict]:
        shown = json.loads(kubectl("get", "deploy", "waited", "-o", "json").stdout)["status"]["conditions"]
        return {c["type"]: c for c in shown}
    now = conditions()
    assert (now["Available"]["status"], now["Available"]["reason"]) == ("True", "MinimumReplicasAvailable")
    assert now["Progressing"]["reason"] == "NewReplicaSetAvailable"
    kubectl("patch", "deployment", "waited", "--type=json", "-p", NEVER_READY)
    new = poll(lambda: next((i["metadata"]["name"] for i in json.loads(kubectl(
        "get", "rs", "-l", "app=waited", "-o", "json").stdout)["items"] if i["spec"]["replicas"] == 1), None),
        what="the new ReplicaSet")
    describe = kubectl("describe", "deployment", "waited").stdout
    assert "Conditions:" in describe and "Available      True    MinimumReplicasAvailable" in describe, describe
    assert f"NewReplicaSet:   {new} (1/1 replicas created)" in describe, describe
    progressing = conditions()["Progressing"]
    assert progressing["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated") and new in progressing["message"]
    kubectl("delete", "deployment,service", "waited")


def test_min_ready_seconds_makes_a_ready_pod_wait_before_it_counts_as_available(cluster):
    """minReadySeconds: 2: the pods run and are ready at once, but the Deployment counts them
    available (and ``kubectl rollout status`` returns) only once they have been ready 2 s."""
    app = APP.split("---\n")[0].replace("name: roll", "name: steady").replace("app: roll", "app: steady")
    app = app.replace("  replicas: 3\n", "  replicas: 2\n  minReadySeconds: 2\n")
    start = time.monotonic()
    kubectl("apply", "-f", "-", input=app)
    poll(lambda: json.loads(kubectl("get", "deploy", "steady", "-o", "json").stdout)["status"].get("readyReplicas") == 2,
         timeout=30, what="both pods ready")
    status = json.loads(kubectl("get", "deploy", "steady", "-o", "json").stdout)["status"]
    ready_at = time.monotonic()
    if ready_at - start < 1.5:  # (a slow machine may have passed the 2 s already: then nothing to see)
        assert status.get("availableReplicas", 0) < 2
    kubectl("rollout", "status", "deployment/steady", "--timeout=60s")
    assert time.monotonic() - start >= 2  # not available before the pods had been ready 2 s
    status = json.loads(kubectl("get", "deploy", "steady", "-o", "json").stdout)["status"]
    assert status["availableReplicas"] == 2
    kubectl("delete", "deployment", "steady")


def test_a_rollout_without_progress_exceeds_its_deadline_and_rollout_status_says_so(cluster) -> None:
    stuck = APP.replace("name: roll", "name: stuck").replace("app: roll", "app: stuck").replace(
        "  replicas: 3\n", "  replicas: 1\n  progressDeadlineSeconds: 2\n", 1)
    kubectl("apply", "-f", "-", input=stuck.split("---")[0])
    kubectl("patch", "deployment", "stuck", "--type=json", "-p", NEVER_READY)  # its pods never get ready

    def reason() -> str:
        conds = json.loads(kubectl("get", "deploy", "stuck", "-o", "json").stdout)["status"].get("conditions", [])
        return next((c["reason"] for c in conds if c["type"] == "Progressing"), "")
    poll(lambda: reason() == "ProgressDeadlineExceeded", timeout=20, what="the progress deadline to pass")
    done = kubectl("rollout", "status", "deployment/stuck", "--timeout=20s", check=False)
    assert done.returncode != 0 and 'deployment "stuck" exceeded its progress deadline' in done.stderr, done
    kubectl("delete", "deployment", "stuck")
