"""The ServiceAccount admission check: a pod naming a ServiceAccount that does not exist is refused
(403 for a client's create, a problem in a batch), and a workload whose template names one gets
its controller's FailedCreate Event and no pod until it exists."""
from __future__ import annotations

import pytest

from emulator.cluster import controllers
from emulator.errors import ForbiddenError, SpecError
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents
from tests.unit.test_controllers import default_state

POD = """apiVersion: v1
kind: Pod
metadata: {name: bot}
spec:
  serviceAccountName: robot
  containers: [{name: c, image: busybox}]
"""
ACCOUNT = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n"
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: bots}
spec:
  replicas: 2
  selector: {matchLabels: {app: bots}}
  template:
    metadata: {labels: {app: bots}}
    spec:
      serviceAccountName: robot
      containers: [{name: c, image: busybox}]
"""


def objects(text: str) -> list:
    return parse_documents(load_text(text, "test.yaml")).objects


def test_a_pod_naming_a_missing_service_account_is_forbidden():
    st = default_state()
    with pytest.raises(ForbiddenError, match='pods "bot" is forbidden: error looking up service account '
                                             'default/robot: serviceaccount "robot" not found'):
        controllers.apply(st, objects(POD))
    assert st.get("Pod", "default", "bot") is None
    with pytest.raises(SpecError):  # in a batch, the pod before its ServiceAccount: as kubectl apply sends them
        controllers.apply(st, objects(POD + "---\n" + ACCOUNT))
    controllers.apply(st, objects(ACCOUNT + "---\n" + POD))  # the account first: both made
    assert st.get("Pod", "default", "bot") is not None


def test_a_workload_naming_a_missing_service_account_makes_no_pod_until_it_exists():
    st = default_state()
    controllers.apply(st, objects(DEPLOYMENT))
    rs = next(r.obj.meta.name for r in st.list("ReplicaSet", "default") if r.obj.meta.name.startswith("bots-"))
    assert not [r for r in st.pods("default") if r.obj.owner == ("ReplicaSet", rs)]
    warnings = [e for e in st.events.about("ReplicaSet", "default", rs) if e.reason == "FailedCreate"]
    assert warnings and warnings[0].message == (f'Error creating: pods "{rs}-" is forbidden: error looking up service '
                                                'account default/robot: serviceaccount "robot" not found')
    controllers.apply(st, objects(ACCOUNT))
    assert len([r for r in st.pods("default") if r.obj.owner == ("ReplicaSet", rs)]) == 2
