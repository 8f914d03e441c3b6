"""The reconcile loops on a simulated state: naming, scaling, deletion, garbage collection."""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from emulator.cluster import controllers, nodes, render
from emulator.cluster.admission import MAX_PODS
from emulator.cluster.store import ClusterState, ContainerStatus
from emulator.errors import K8semuError, NotFoundError, SpecError
from emulator.model.pod import Container, PodSpec
from emulator.model.scheduler import Placer, schedule
from emulator.spec.cluster import load_cluster
from emulator.spec.manifests import load_manifest_files

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


@pytest.fixture
def state() -> ClusterState:
    return default_state()


def default_state() -> ClusterState:
    """The default topology's objects after one controller pass (pods scheduled, none started)."""
    config = load_cluster(TOPOLOGIES / "default.yaml")
    st = ClusterState(config, rng=random.Random(7))
    controllers.apply(st, list(config.manifests))
    return st


def make_ready(rec) -> None:
    """As the kubelet reports a pod whose containers run and pass their readiness probes."""
    rec.status.phase = "Running"
    rec.status.containers = {c.name: ContainerStatus(c.name, "running", "", ready=True) for c in rec.obj.spec.containers}


def settle(st: ClusterState, rounds: int = 30) -> None:
    """The kubelet's part at once, until nothing changes: every scheduled pod runs and is ready,
    every deleted one is gone; the controllers run after each round (a rollout's next step)."""
    for _ in range(rounds):
        changed = False
        for r in list(st.pods()):
            if r.deleting:
                controllers.forget_pod(st, r)
                changed = True
            elif r.status.node and not r.status.ready:
                make_ready(r)
                changed = True
        controllers.reconcile(st)
        if not changed:
            return
    raise AssertionError("the controllers never settled")


def web_pods(st: ClusterState) -> list:
    return [r for r in st.pods("default") if r.obj.meta.labels.get("app") == "web" and not r.deleting]


def test_deployment_creates_replicaset_and_pods_named_like_kubernetes(state: ClusterState) -> None:
    rs = state.list("ReplicaSet", "default")
    assert len(rs) == 1
    rs_name = rs[0].obj.meta.name
    assert rs_name.startswith("web-") and rs[0].obj.owner == ("Deployment", "web")
    pods = web_pods(state)
    assert len(pods) == 3
    for p in pods:
        assert p.obj.meta.name.startswith(rs_name + "-") and len(p.obj.meta.name) == len(rs_name) + 6
        assert p.obj.meta.labels["pod-template-hash"] == rs_name.split("-")[-1]
        assert p.status.node in ("worker-1", "worker-2")  # control-plane is tainted
    ips = [p.status.ip for p in state.pods()]
    assert len(set(ips)) == len(ips)


def test_scale_up_and_down(state: ClusterState) -> None:
    controllers.scale(state, "Deployment", "default", "web", 5)
    assert len(web_pods(state)) == 5
    controllers.scale(state, "Deployment", "default", "web", 1)
    assert len(web_pods(state)) == 1
    assert sum(1 for r in state.pods() if r.deleting) == 4
    for r in [r for r in state.pods() if r.deleting]:
        controllers.forget_pod(state, r)
    allocated = {ip for ipam in state.ipam.values() for ip in ipam.allocated}
    assert allocated == {r.status.ip for r in state.pods()}


def test_deleting_an_owned_pod_gets_a_replacement(state: ClusterState) -> None:
    victim = web_pods(state)[0]
    controllers.delete(state, "Pod", "default", victim.obj.meta.name)
    assert victim.deleting and len(web_pods(state)) == 3


def test_deleting_a_deployment_collects_its_replicaset_and_pods(state: ClusterState) -> None:
    controllers.delete(state, "Deployment", "default", "web")
    assert not state.list("ReplicaSet") and not web_pods(state)
    with pytest.raises(NotFoundError):
        controllers.delete(state, "Deployment", "default", "web")


def test_orphan_propagation_keeps_what_the_deployment_owned_without_its_owner(state: ClusterState) -> None:
    """``kubectl delete deployment web --cascade=orphan``: the ReplicaSet and its pods stay; the
    ReplicaSet has no owner any more (its pods keep theirs: the ReplicaSet)."""
    pods = {r.obj.meta.name for r in web_pods(state)}
    controllers.delete(state, "Deployment", "default", "web", propagation="Orphan")
    (rs,) = state.list("ReplicaSet")
    assert rs.obj.owner is None and {r.obj.meta.name for r in web_pods(state)} == pods
    controllers.reconcile(state)
    assert {r.obj.meta.name for r in web_pods(state)} == pods  # nothing adopts or collects them


def test_foreground_propagation_keeps_the_owners_until_their_pods_are_gone(state: ClusterState) -> None:
    """``kubectl delete deployment web --cascade=foreground``: the Deployment and its ReplicaSet
    stay, marked for deletion with the foregroundDeletion finalizer, while the pods terminate;
    nothing replaces them; when the kubelet has ended the last pod both go."""
    pods = web_pods(state)
    controllers.delete(state, "Deployment", "default", "web", propagation="Foreground")
    dep, (rs,) = state.get("Deployment", "default", "web"), state.list("ReplicaSet")
    assert dep.finalizers == rs.finalizers == ("foregroundDeletion",) and dep.deleting and rs.deleting
    shown = render.workload_object("Deployment", dep, state)["metadata"]
    assert shown["finalizers"] == ["foregroundDeletion"] and shown["deletionGracePeriodSeconds"] == 0
    assert "deletionTimestamp" in shown
    assert all(p.deleting for p in pods) and web_pods(state) == []  # terminating, and none replace them
    controllers.reconcile(state)
    assert web_pods(state) == [] and state.get("Deployment", "default", "web") is not None
    for p in pods[:-1]:
        controllers.forget_pod(state, p)
    assert state.get("ReplicaSet", "default", rs.obj.meta.name) is not None  # one pod still terminating
    controllers.forget_pod(state, pods[-1])
    assert state.get("Deployment", "default", "web") is None and state.list("ReplicaSet") == []


def test_a_pods_delete_may_name_its_grace_period_and_a_later_one_only_shortens_it(state: ClusterState) -> None:
    victim = web_pods(state)[0]
    controllers.delete(state, "Pod", "default", victim.obj.meta.name, grace=10)
    assert victim.deleting and victim.grace == 10
    controllers.delete(state, "Pod", "default", victim.obj.meta.name, grace=30)
    assert victim.grace == 10
    controllers.delete(state, "Pod", "default", victim.obj.meta.name, grace=0)
    assert victim.grace == 0


def test_changing_the_template_rolls_to_a_new_replicaset(state: ClusterState, tmp_path: Path) -> None:
    old = state.list("ReplicaSet")[0].obj.meta.name
    manifest = (TOPOLOGIES / "manifests" / "demo.yaml").read_text().replace("nginx:1.25", "nginx:1.26")
    (tmp_path / "m.yaml").write_text(manifest)
    lines = controllers.apply(state, load_manifest_files([str(tmp_path / "m.yaml")]).objects)
    assert "deployment.apps/web configured" in lines and "pod/client unchanged" in lines
    settle(state)
    sets = {r.obj.meta.name: r.obj for r in state.list("ReplicaSet")}
    new = next(name for name in sets if name != old)
    assert len(sets) == 2 and sets[old].replicas == 0 and sets[new].replicas == 3  # the old one kept as history
    assert [controllers.revision_of(sets[n]) for n in (old, new)] == [1, 2]


def test_rolling_back_to_an_old_template_reuses_its_replicaset_as_the_next_revision(
        state: ClusterState, tmp_path: Path) -> None:
    first = state.list("ReplicaSet")[0].obj.meta.name
    text = (TOPOLOGIES / "manifests" / "demo.yaml").read_text()
    for image in ("nginx:1.26", "nginx:1.27", "nginx:1.25"):  # the last one is the first template again
        (tmp_path / "m.yaml").write_text(text.replace("nginx:1.25", image))
        controllers.apply(state, load_manifest_files([str(tmp_path / "m.yaml")]).objects)
        settle(state)
    sets = {r.obj.meta.name: r.obj for r in state.list("ReplicaSet")}
    assert len(sets) == 3 and sets[first].replicas == 3 and controllers.revision_of(sets[first]) == 4
    assert sorted(controllers.revision_of(o) for o in sets.values()) == [2, 3, 4]


def test_revision_history_limit_prunes_the_oldest(state: ClusterState, tmp_path: Path) -> None:
    text = (TOPOLOGIES / "manifests" / "demo.yaml").read_text().replace(
        "  replicas: 3\n", "  replicas: 3\n  revisionHistoryLimit: 1\n")
    assert "revisionHistoryLimit" in text
    for image in ("nginx:1.26", "nginx:1.27"):
        (tmp_path / "m.yaml").write_text(text.replace("nginx:1.25", image))
        controllers.apply(state, load_manifest_files([str(tmp_path / "m.yaml")]).objects)
        settle(state)
    assert sorted(controllers.revision_of(r.obj) for r in state.list("ReplicaSet")) == [2, 3]


def test_deleting_a_namespace_collects_a_deployment_and_what_it_owns(state: ClusterState, tmp_path: Path) -> None:
    """The Deployment's ReplicaSet goes with the Deployment, before the namespace's own walk
    reaches it: that walk must not fail on it (kubectl delete namespace did)."""
    (tmp_path / "ns.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: lab}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: lab}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: w}}\n"
        "  template:\n    metadata: {labels: {app: w}}\n    spec: {containers: [{name: c, image: nginx}]}\n")
    controllers.apply(state, load_manifest_files([str(tmp_path / "ns.yaml")]).objects)
    assert state.list("ReplicaSet", "lab")
    controllers.delete(state, "Namespace", "", "lab")
    assert "lab" not in state.namespaces()
    assert not state.list("Deployment", "lab") and not state.list("ReplicaSet", "lab")
    assert all(r.deleting for r in state.pods("lab"))


def test_apply_refuses_a_pod_in_a_missing_namespace(state: ClusterState, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: nope}\n"
                                     "spec: {containers: [{name: c, image: busybox}]}\n")
    with pytest.raises(SpecError) as info:
        controllers.apply(state, load_manifest_files([str(tmp_path / "p.yaml")]).objects)
    assert "namespaces 'nope' not found" in str(info.value)


def test_scaling_past_the_cluster_pod_limit_is_refused_and_changes_nothing(state: ClusterState) -> None:
    before = len(web_pods(state))
    with pytest.raises(SpecError) as info:
        controllers.scale(state, "Deployment", "default", "web", MAX_PODS + 1)
    assert f"k8semu runs at most {MAX_PODS} pods" in str(info.value)
    assert len(web_pods(state)) == before
    controllers.scale(state, "Deployment", "default", "web", before + 1)
    assert len(web_pods(state)) == before + 1


def test_the_placer_chooses_what_the_scheduler_chooses_pod_after_pod() -> None:
    config = load_cluster(TOPOLOGIES / "three-node.yaml")
    rng = random.Random(3)
    specs = [PodSpec((Container("c", "busybox"),), node_selector={"zone": rng.choice(["b", "c"])} if rng.random() < 0.3
                     else {}) for _ in range(300)]
    load_a = {n.name: rng.randrange(5) for n in config.nodes}
    load_b = dict(load_a)
    placer = Placer(config.nodes, load_b)
    for spec in specs:
        expected = schedule(spec, config.nodes, load_a)
        got = placer.place(spec)
        assert got == expected
        load_a[expected] += 1
        if rng.random() < 0.9:  # the caller may fail to place it (no address): no count then
            load_b[got] += 1
        else:
            load_a[expected] -= 1


def test_cordon_keeps_new_pods_off_the_node_and_drain_evicts_what_it_may(tmp_path: Path) -> None:
    """kubectl cordon/drain on the state: the unschedulable taint keeps replacements off the
    node; drain refuses a bare pod without force and evicts (gracefully deletes) the others."""
    st = ClusterState(load_cluster(TOPOLOGIES / "services.yaml"), rng=random.Random(3))
    controllers.apply(st, list(st.config.manifests))
    (tmp_path / "bare.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\n"
                                        "spec: {nodeName: worker-1, containers: [{name: c, image: busybox}]}\n")
    controllers.apply(st, load_manifest_files([str(tmp_path / "bare.yaml")]).objects)
    assert nodes.cordon(st, "worker-1") == "node/worker-1 cordoned"
    assert nodes.taints_of(st, st.config.node("worker-1"))[-1] == nodes.UNSCHEDULABLE_TAINT
    with pytest.raises(K8semuError, match="use --force to override\\): default/bare"):
        nodes.drain(st, "worker-1")
    on_node = {r.obj.key for r in st.pods() if r.status.node == "worker-1"}
    done = nodes.drain(st, "worker-1", force=True)
    lines = done["lines"]
    assert set(done["evicted"]) == on_node and not done["refused"]
    assert lines[0] == "node/worker-1 already cordoned" and lines[1].startswith("Warning: deleting Pods")
    assert {line.split()[-1] for line in lines if line.startswith("evicting pod ")} == on_node
    assert all(r.deleting for r in st.pods() if r.obj.key in on_node)
    controllers.reconcile(st)
    fresh = [r for r in st.pods() if not r.deleting and r.obj.key not in on_node]
    assert fresh and all(r.status.node != "worker-1" for r in fresh)
    assert nodes.cordon(st, "worker-1", False) == "node/worker-1 uncordoned"
    with pytest.raises(NotFoundError):
        nodes.cordon(st, "nope")


def test_drain_with_a_pod_selector_evicts_only_the_matching_pods(tmp_path: Path) -> None:
    """kubectl drain --pod-selector: only the node's pods the query matches are evicted, so a
    bare pod it leaves out needs no --force; a query labels.Parse refuses fails before the node
    is cordoned."""
    st = ClusterState(load_cluster(TOPOLOGIES / "services.yaml"), rng=random.Random(3))
    controllers.apply(st, list(st.config.manifests))
    (tmp_path / "bare.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\n"
                                        "spec: {nodeName: worker-1, containers: [{name: c, image: busybox}]}\n")
    controllers.apply(st, load_manifest_files([str(tmp_path / "bare.yaml")]).objects)
    with pytest.raises(K8semuError, match="--pod-selector=<pod_selector> must be a valid label selector"):
        nodes.drain(st, "worker-1", pod_selector="app in (web")
    assert "worker-1" not in st.cordoned
    chosen = {r.obj.key for r in st.pods() if r.status.node == "worker-1"
              and r.obj.meta.labels.get("app") in ("web", "echo")}
    assert chosen and "default/bare" not in chosen
    done = nodes.drain(st, "worker-1", pod_selector="app in (web, echo)")
    assert set(done["evicted"]) == chosen and not done["refused"]
    assert not any(line.startswith("Warning") for line in done["lines"])
    assert not st.get("Pod", "default", "bare").deleting
    assert all(r.deleting == (r.obj.key in chosen) for r in st.pods())


def test_a_pod_is_rendered_again_only_when_what_it_shows_changed(state: ClusterState) -> None:
    first = render.objects(state, "Pod", None)
    again = render.objects(state, "Pod", None)
    assert all(a is b for a, b in zip(first, again))  # nothing changed: the same renderings
    victim = web_pods(state)[0]
    victim.status.phase = "Running"
    victim.status.containers["nginx"] = ContainerStatus("nginx", state="running", pid=42, ready=True)
    after = {p["metadata"]["name"]: p for p in render.objects(state, "Pod", None)}
    assert after[victim.obj.meta.name]["status"]["containerStatuses"][0]["ready"] is True
    assert sum(1 for a, b in zip(first, render.objects(state, "Pod", None)) if a is not b) == 1
    controllers.delete(state, "Pod", "default", victim.obj.meta.name)
    assert "deletionTimestamp" in {p["metadata"]["name"]: p for p in render.objects(state, "Pod", None)}[
        victim.obj.meta.name]["metadata"]
    controllers.forget_pod(state, victim)
    render.objects(state, "Pod", None)
    assert victim.uid not in state.rendered  # a pod gone leaves no rendering behind


def test_a_client_writing_an_owned_pod_back_keeps_its_owner():
    """``kubectl label pod`` on a ReplicaSet's pod: the pod keeps its controller (the API server
    keeps ownerReferences), so the ReplicaSet does not start another."""
    st = default_state()
    settle(st)
    rec = next(r for r in st.pods("default") if r.obj.owner and r.obj.owner[0] == "ReplicaSet")
    count = len([r for r in st.pods("default") if not r.deleting])
    labelled = replace(rec.obj, meta=replace(rec.obj.meta, labels={**rec.obj.meta.labels, "x": "y"}), owner=None)
    assert controllers.apply(st, [labelled]) == [f"pod/{rec.obj.meta.name} configured"]
    assert st.get("Pod", "default", rec.obj.meta.name).obj.owner == rec.obj.owner
    assert len([r for r in st.pods("default") if not r.deleting]) == count
