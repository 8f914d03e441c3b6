"""A Deployment's Available and Progressing conditions (cluster/deploystatus.py) as
kube-controller-manager sets them: reasons, messages and which time moves when."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from emulator.cluster import controllers, deploystatus, render
from emulator.cluster.deploystatus import Counts, Tracked, update
from emulator.errors import SpecError
from emulator.model import naming
from emulator.spec.manifests import load_manifest_files
from tests.unit.test_controllers import default_state, make_ready, settle
from tests.unit.test_rollout import DEMO, web


def deployment(tmp_path: Path, text: str = DEMO):
    (tmp_path / "d.yaml").write_text(text)
    return next(o for o in load_manifest_files([str(tmp_path / "d.yaml")]).objects if type(o).__name__ == "Deployment")


def shown(tracked: Tracked) -> list[tuple]:
    return [(c.type, c.status, c.reason, c.last_update, c.last_transition) for c in tracked.conditions.values()]


def test_a_rollout_from_creation_to_complete(tmp_path: Path) -> None:
    dep, t = deployment(tmp_path), Tracked()  # 3 replicas, RollingUpdate 25 %: maxUnavailable 0
    name = deploystatus.replicaset_name(dep)
    update(t, dep, Counts(0, 0, 0), True, 10.0)
    assert shown(t) == [("Progressing", "True", "NewReplicaSetCreated", 10.0, 10.0),
                        ("Available", "False", "MinimumReplicasUnavailable", 10.0, 10.0)]
    assert t.conditions["Progressing"].message == f'Created new replica set "{name}"'
    update(t, dep, Counts(3, 3, 1), True, 11.0)  # progress: the update time moves, the transition stays
    assert shown(t)[-1] == ("Progressing", "True", "ReplicaSetUpdated", 11.0, 10.0)
    assert t.conditions["Progressing"].message == f'ReplicaSet "{name}" is progressing.'
    update(t, dep, Counts(3, 3, 1), True, 12.0)  # no progress: nothing moves
    assert shown(t)[-1] == ("Progressing", "True", "ReplicaSetUpdated", 11.0, 10.0)
    update(t, dep, Counts(3, 3, 3), True, 13.0)
    assert shown(t) == [("Available", "True", "MinimumReplicasAvailable", 13.0, 13.0),
                        ("Progressing", "True", "NewReplicaSetAvailable", 13.0, 10.0)]
    assert t.conditions["Progressing"].message == f'ReplicaSet "{name}" has successfully progressed.'
    update(t, dep, Counts(3, 3, 2), True, 14.0)  # a pod turns unready: availability, not progress
    assert shown(t) == [("Progressing", "True", "NewReplicaSetAvailable", 13.0, 10.0),
                        ("Available", "False", "MinimumReplicasUnavailable", 14.0, 14.0)]


def test_max_unavailable_decides_availability_and_recreate_allows_none(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    t = Tracked()
    update(t, replace(dep, max_unavailable=1), Counts(3, 3, 2), True, 1.0)
    assert t.conditions["Available"].status == "True"  # 2 >= 3 - 1
    t = Tracked()
    update(t, replace(dep, strategy="Recreate", max_unavailable=1), Counts(3, 3, 2), True, 1.0)
    assert t.conditions["Available"].status == "False"  # Recreate: maxUnavailable is 0
    t = Tracked()
    update(t, replace(dep, replicas=0), Counts(0, 0, 0), True, 1.0)
    assert t.conditions["Available"].status == "True"


def test_the_controller_keeps_them_and_the_api_shows_them(tmp_path: Path) -> None:
    st = default_state()
    settle(st)
    obj = next(o for o in render.objects(st, "Deployment", "default") if o["metadata"]["name"] == "web")
    assert {c["type"]: (c["status"], c["reason"]) for c in obj["status"]["conditions"]} == {
        "Available": ("True", "MinimumReplicasAvailable"), "Progressing": ("True", "NewReplicaSetAvailable")}
    assert obj["status"]["conditions"][0]["lastTransitionTime"].endswith("Z")
    (tmp_path / "m.yaml").write_text(DEMO.replace("nginx:1.25", "nginx:1.26"))
    controllers.apply(st, load_manifest_files([str(tmp_path / "m.yaml")]).objects)
    obj = next(o for o in render.objects(st, "Deployment", "default") if o["metadata"]["name"] == "web")
    progressing = next(c for c in obj["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "NewReplicaSetCreated"
    for _ in range(30):
        for r in list(web(st)):
            if r.deleting:
                controllers.forget_pod(st, r)
            elif r.status.node and not r.status.ready:
                make_ready(r)
        controllers.reconcile(st)
    obj = next(o for o in render.objects(st, "Deployment", "default") if o["metadata"]["name"] == "web")
    assert {c["type"]: c["reason"] for c in obj["status"]["conditions"]} == {
        "Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
    controllers.delete(st, "Deployment", "default", "web")
    assert ("default", "web") not in st.deployments


def test_no_progress_for_the_deadline_times_the_rollout_out_until_it_progresses(tmp_path: Path) -> None:
    """progress.go: DeploymentTimedOut once lastUpdateTime + progressDeadlineSeconds has passed
    (a complete rollout never times out); the next progress makes Progressing True again."""
    dep = replace(deployment(tmp_path), progress_deadline=30)
    name, t = deploystatus.replicaset_name(dep), Tracked()
    update(t, dep, Counts(0, 0, 0), True, 10.0)
    update(t, dep, Counts(3, 3, 1), True, 11.0)
    update(t, dep, Counts(3, 3, 1), True, 41.0)  # 30 s without progress: not yet past the deadline
    assert shown(t)[-1] == ("Progressing", "True", "ReplicaSetUpdated", 11.0, 10.0)
    update(t, dep, Counts(3, 3, 1), True, 41.5)
    assert shown(t)[-1] == ("Progressing", "False", "ProgressDeadlineExceeded", 41.5, 41.5)
    assert t.conditions["Progressing"].message == f'ReplicaSet "{name}" has timed out progressing.'
    update(t, dep, Counts(3, 3, 1), True, 50.0)  # it stays timed out, its times unmoved
    assert shown(t)[-1] == ("Progressing", "False", "ProgressDeadlineExceeded", 41.5, 41.5)
    update(t, dep, Counts(3, 3, 2), True, 60.0)
    assert shown(t)[-1] == ("Progressing", "True", "ReplicaSetUpdated", 60.0, 60.0)
    update(t, dep, Counts(3, 3, 3), True, 61.0)
    update(t, dep, Counts(3, 3, 3), True, 1000.0)  # complete: no deadline
    assert shown(t)[-1][:3] == ("Progressing", "True", "NewReplicaSetAvailable")


def test_the_deadline_passing_makes_the_controllers_run_and_the_api_shows_it(tmp_path: Path) -> None:
    st = default_state()
    settle(st)
    (tmp_path / "m.yaml").write_text(DEMO.replace("nginx:1.25", "nginx:1.26").replace(
        "  replicas: 3\n", "  replicas: 3\n  progressDeadlineSeconds: 5\n", 1))
    controllers.apply(st, load_manifest_files([str(tmp_path / "m.yaml")]).objects)  # its new pods never get ready
    progressing = st.deployments[("default", "web")].conditions["Progressing"]
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetCreated")
    st.available_checked = progressing.last_update + 1
    assert not deploystatus.due(st, progressing.last_update + 4)
    assert deploystatus.due(st, progressing.last_update + 6)
    deploystatus.sync(st, st.deployments, at=progressing.last_update + 6)
    obj = next(o for o in render.objects(st, "Deployment", "default") if o["metadata"]["name"] == "web")
    assert obj["spec"]["progressDeadlineSeconds"] == 5
    assert [c["reason"] for c in obj["status"]["conditions"] if c["type"] == "Progressing"] == ["ProgressDeadlineExceeded"]


def test_the_deadline_must_exceed_min_ready_seconds(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(DEMO.replace("  replicas: 3\n", "  replicas: 3\n  minReadySeconds: 10\n"
                                                  "  progressDeadlineSeconds: 10\n", 1))
    with pytest.raises(SpecError, match="progressDeadlineSeconds: must be greater than minReadySeconds"):
        load_manifest_files([str(tmp_path / "m.yaml")])


def test_the_template_hash_is_remembered_per_template_and_a_new_template_hashes_anew(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    first = deploystatus.template_hash(dep)
    assert first == naming.pod_template_hash(dep.template.raw) == deploystatus.template_hash(dep)
    changed = replace(dep, template=replace(dep.template, raw={**dep.template.raw, "metadata": {"labels": {"x": "y"}}}))
    assert deploystatus.template_hash(changed) == naming.pod_template_hash(changed.template.raw) != first
    # an equal template made anew (a re-applied manifest) hashes the same
    again = deployment(tmp_path)
    assert again.template is not dep.template and deploystatus.template_hash(again) == first


def test_counts_read_from_the_ownership_index_are_the_counts_asked_one_by_one(tmp_path: Path) -> None:
    st = default_state()
    settle(st)
    (tmp_path / "m.yaml").write_text(DEMO.replace("nginx:1.25", "nginx:1.26"))  # mid-rollout: two ReplicaSets
    controllers.apply(st, load_manifest_files([str(tmp_path / "m.yaml")]).objects)
    owned = deploystatus.ownership(st)
    deployments = st.list("Deployment")
    assert deployments and any(len(owned[0].get((r.obj.meta.namespace, r.obj.meta.name), ())) == 2 for r in deployments)
    for rec in deployments:
        assert deploystatus.counts(st, rec, owned) == deploystatus.counts(st, rec)
