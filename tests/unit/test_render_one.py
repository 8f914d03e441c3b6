"""A GET of one object renders it alone where its kind allows (render.objects with a name):
the same object a listing of its kind shows, for every kind the API serves."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.cluster import controllers, render
from emulator.cluster.admit import admit_cluster
from emulator.cluster.store import ClusterState
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_object

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: default}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox, command: ["true"]}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: Never, containers: [{name: c, image: busybox, command: ["true"]}]}
"""


@pytest.mark.parametrize("topology", ["services.yaml", "calico.yaml", "netpol.yaml"])
def test_one_object_renders_as_its_kinds_listing_shows_it(topology):
    cfg = admit_cluster(ROOT / "topologies" / topology)
    state = ClusterState(cfg)
    controllers.apply(state, list(cfg.manifests) + [o for doc in load_text(WORKLOADS, "w.yaml")
                                                     for o in parse_object(doc)[0]])
    for _ in range(3):
        controllers.reconcile(state)
    kinds = {type(r.obj).__name__ for r in state.records.values()} | {"Node", "Endpoints", "EndpointSlice",
                                                                      "ControllerRevision"}
    checked = 0
    for kind in sorted(kinds - {"Event"}):
        for obj in render.objects(state, kind, None):
            ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
            assert render.objects(state, kind, ns, name=name) == [obj], (kind, ns, name)
            checked += 1
        assert render.objects(state, kind, "default", name="no-such-object") == []
    assert checked > 50 and {"StatefulSet", "DaemonSet", "Job", "CronJob", "ControllerRevision", "Pod"} <= kinds
