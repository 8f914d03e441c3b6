"""Deployment rollouts (cluster/rollout.py) on a simulated state: RollingUpdate's maxSurge and
maxUnavailable hold at every step, Recreate starts new pods only once the old are gone, and the
API server's validation of ``spec.strategy``."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from emulator.cluster import controllers, deploystatus, render
from emulator.cluster.store import ClusterState
from emulator.errors import SpecError
from emulator.spec.manifests import load_manifest_files
from tests.unit.test_controllers import TOPOLOGIES, default_state, make_ready, settle

DEMO = (TOPOLOGIES / "manifests" / "demo.yaml").read_text()


@pytest.fixture
def state() -> ClusterState:
    return default_state()


def web(st: ClusterState) -> list:
    return [r for r in st.pods("default") if r.obj.meta.labels.get("app") == "web"]


def roll(st: ClusterState, tmp_path: Path, strategy: str = "") -> list[tuple[int, int, int]]:
    """Change the web Deployment's image (with ``strategy`` under its spec), then run the
    kubelet's part one step at a time: after each controller pass, (pods not being deleted,
    those ready, pods of the old template) as a Service would see them."""
    settle(st)
    text = DEMO.replace("nginx:1.25", "nginx:1.26").replace("  replicas: 3\n", f"  replicas: 3\n{strategy}")
    (tmp_path / "m.yaml").write_text(text)
    controllers.apply(st, load_manifest_files([str(tmp_path / "m.yaml")]).objects)
    seen = []
    for _ in range(30):
        live = [r for r in web(st) if not r.deleting]
        seen.append((len(live), sum(1 for r in live if r.status.ready),
                     sum(1 for r in live if "nginx:1.25" in repr(r.obj.spec))))
        if seen[-1] == (3, 3, 0):
            return seen
        for r in list(web(st)):  # the kubelet: deleted pods end, new ones become ready
            if r.deleting:
                controllers.forget_pod(st, r)
            elif r.status.node and not r.status.ready:
                make_ready(r)
        controllers.reconcile(st)
    raise AssertionError(f"the rollout never finished: {seen}")


def test_default_rolling_update_surges_by_one_and_never_drops_below_three(state: ClusterState, tmp_path: Path):
    """3 replicas, maxSurge 25% -> 1 (rounded up), maxUnavailable 25% -> 0 (rounded down)."""
    seen = roll(state, tmp_path)
    assert all(total <= 4 and ready >= 3 for total, ready, _ in seen), seen
    assert seen[0] == (4, 3, 3)  # one new pod first, every old one kept until it is ready
    sets = {r.obj.meta.name: r.obj.replicas for r in state.list("ReplicaSet")}
    assert sorted(sets.values()) == [0, 3]


def test_max_unavailable_lets_old_pods_go_before_new_ones_come(state: ClusterState, tmp_path: Path):
    seen = roll(state, tmp_path, "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}\n")
    assert all(total <= 3 and ready >= 2 for total, ready, _ in seen), seen
    assert seen[0] == (2, 2, 2)


def test_recreate_starts_the_new_pods_once_every_old_one_is_gone(state: ClusterState, tmp_path: Path):
    seen = roll(state, tmp_path, "  strategy: {type: Recreate}\n")
    assert seen[0] == (0, 0, 0)  # every old pod is being deleted, no new one yet
    new = [name for name, rs in ((r.obj.meta.name, r.obj) for r in state.list("ReplicaSet")) if rs.replicas]
    assert len(new) == 1 and seen[-1] == (3, 3, 0)


@pytest.mark.parametrize("strategy, message", [
    ("{type: Blue}", 'Unsupported value: "Blue"'),
    ("{type: Recreate, rollingUpdate: {maxSurge: 1}}", "may not be specified when strategy `type` is 'Recreate'"),
    ("{rollingUpdate: {maxSurge: 0, maxUnavailable: '0%'}}", "may not be 0 when `maxSurge` is 0"),
    ("{rollingUpdate: {maxUnavailable: '150%'}}", "between 0% and 100%"),
    ("{rollingUpdate: {maxSurge: -1}}", "must be greater than or equal to 0"),
])
def test_the_api_servers_strategy_rules(tmp_path: Path, strategy: str, message: str):
    (tmp_path / "m.yaml").write_text(DEMO.replace("  replicas: 3\n", f"  replicas: 3\n  strategy: {strategy}\n"))
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("`", "`")):
        load_manifest_files([str(tmp_path / "m.yaml")])


def test_a_surge_may_exceed_100_percent(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(DEMO.replace("  replicas: 3\n", "  replicas: 3\n  strategy: "
                                                                    "{rollingUpdate: {maxSurge: '200%'}}\n"))
    dep = next(o for o in load_manifest_files([str(tmp_path / "m.yaml")]).objects if type(o).__name__ == "Deployment")
    assert (dep.strategy, dep.max_surge, dep.max_unavailable) == ("RollingUpdate", "200%", "25%")


def test_min_ready_seconds_holds_the_rollout_until_new_pods_have_been_ready_that_long(state: ClusterState,
                                                                                      tmp_path: Path, monkeypatch):
    """minReadySeconds 30: a new pod ready for less is not available, so no old pod goes (maxUnavailable
    0) and the status says so; 30 s after it became ready (on a clock the test moves), it is, and
    deploystatus.due wakes the controllers as it wakes the manager: the rollout takes its next step."""
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    settle(state)
    text = DEMO.replace("nginx:1.25", "nginx:1.26").replace("  replicas: 3\n", "  replicas: 3\n  minReadySeconds: 30\n")
    (tmp_path / "m.yaml").write_text(text)
    controllers.apply(state, load_manifest_files([str(tmp_path / "m.yaml")]).objects)
    new = [r for r in web(state) if "nginx:1.26" in repr(r.obj.spec)]
    assert len(new) == 1
    make_ready(new[0])
    new[0].status.ready_since = clock[0]  # as the kubelet times it
    controllers.reconcile(state)
    assert not deploystatus.due(state, clock[0])
    assert len([r for r in web(state) if r.deleting]) == 0  # not available yet: every old pod stays
    status = next(o for o in render.objects(state, "Deployment", "default") if o["metadata"]["name"] == "web")["status"]
    assert status["readyReplicas"] == 4 and status["availableReplicas"] == 3 and status["updatedReplicas"] == 1
    clock[0] += 29
    assert not deploystatus.due(state, clock[0])
    clock[0] += 1
    assert deploystatus.due(state, clock[0])
    controllers.reconcile(state)
    assert len([r for r in web(state) if r.deleting]) == 1  # now one old pod may go
