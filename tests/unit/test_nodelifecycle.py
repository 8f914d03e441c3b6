"""The node lifecycle controller and taint eviction for a stopped node (issue #16), on a clock
the test holds: Unknown after the grace period (times spec.timeScale), the unreachable taints,
pods not ready at once, evicted when their toleration runs out (never for a DaemonSet's), and
everything undone when the node posts again."""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from emulator.cluster import controllers, nodedaemons, nodelifecycle, nodes, render
from emulator.cluster.store import ClusterState, ContainerStatus
from emulator.model.pod import Toleration
from emulator.spec.cluster import load_cluster

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def running_state() -> ClusterState:
    """topologies/faults.yaml at timeScale 0.1 with every pod running and ready, the node
    daemons' DaemonSet included."""
    st = ClusterState(replace(load_cluster(TOPOLOGIES / "faults.yaml"), time_scale=0.1), rng=random.Random(5))
    controllers.apply(st, nodedaemons.node_daemons(st.config))  # the node agent's DaemonSet, as up applies it
    controllers.apply(st, list(st.config.manifests))
    for rec in st.pods():
        rec.status.phase = "Running"
        rec.status.containers = {c.name: ContainerStatus(c.name, "running", "", ready=True)
                                 for c in rec.obj.spec.containers}
    controllers.reconcile(st)
    return st


def on(st: ClusterState, node: str) -> list:
    return [r for r in st.pods() if r.status.node == node]


def test_the_grace_period_and_the_toleration_are_kubernetes_defaults_times_the_scale() -> None:
    st = running_state()
    assert st.config.time_scale == 0.1
    assert nodelifecycle.NODE_MONITOR_GRACE == 50.0 and nodelifecycle.grace(st) == 5.0
    pod = next(r.obj for r in on(st, "worker-1") if r.obj.meta.name == "server-1")
    assert nodelifecycle.toleration_seconds(pod) == 300.0  # DefaultTolerationSeconds admission


def test_a_silent_node_turns_unknown_after_the_grace_period_and_its_pods_leave_the_endpoints() -> None:
    st = running_state()
    st.stopped["worker-1"] = 1000.0
    assert not nodelifecycle.tick(st, 1004.9)
    assert abs(nodelifecycle.due(st, 1004.9) - 0.1) < 1e-6  # the loop wakes for it
    node = render.node_object(st.config.node("worker-1"), st, ready=False)  # eth0 down, but the kubelet's
    assert node["status"]["conditions"][0]["status"] == "True"              # last word stands until then
    assert nodelifecycle.tick(st, 1005.0)
    node = render.node_object(st.config.node("worker-1"), st)
    cond = node["status"]["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "NodeStatusUnknown",
                                                                 "Kubelet stopped posting node status.")
    assert [(t["key"], t["effect"]) for t in node["spec"]["taints"]] == [
        ("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")]
    assert "timeAdded" in node["spec"]["taints"][1]
    assert all(not r.status.ready for r in on(st, "worker-1")) and all(r.status.ready for r in on(st, "worker-2"))
    controllers.reconcile_endpoints(st)
    web = st.get("Endpoints", "default", "web").obj
    ready = {a.ip for s in web.subsets for a in s.addresses}
    assert ready and all(ip.startswith("10.244.2.") for ip in ready)
    assert any(e.reason == "NodeNotReady" and e.name == "worker-1" for e in st.events.all(None))


def test_pods_are_evicted_when_their_toleration_runs_out_and_replaced_elsewhere() -> None:
    st = running_state()
    st.stopped["worker-1"] = 0.0
    nodelifecycle.tick(st, 5.0)
    web = next(r for r in on(st, "worker-1") if r.obj.meta.labels.get("app") == "web")
    assert not nodelifecycle.tick(st, 34.9) and not web.deleting
    assert nodelifecycle.tick(st, 35.0)  # 5 s + 300 s x 0.1
    assert web.deleting and all(r.deleting for r in on(st, "worker-1") if r.obj.owner is None or
                                r.obj.owner[0] != "DaemonSet")
    assert any(e.reason == "TaintManagerEviction" and e.name == web.obj.meta.name for e in st.events.all("default"))
    controllers.reconcile(st)
    replacement = [r for r in st.pods() if r.obj.meta.labels.get("app") == "web" and not r.deleting]
    assert len(replacement) == 2 and all(r.status.node != "worker-1" for r in replacement)
    # the scheduler sees the taints: nothing new goes to worker-1
    assert "worker-1" in {n.name for n in nodes.schedulable_view(st) if n.taints}


def test_a_daemon_pod_tolerates_the_taint_for_ever_and_a_pod_without_toleration_goes_at_once() -> None:
    st = running_state()
    daemon = next((r for r in on(st, "worker-1") if r.obj.owner and r.obj.owner[0] == "DaemonSet"), None)
    assert daemon is not None
    assert nodelifecycle.toleration_seconds(daemon.obj) is None
    st.stopped["worker-1"] = 0.0
    nodelifecycle.tick(st, 5.0)
    nodelifecycle.tick(st, 10_000.0)
    controllers.reconcile(st)
    assert not daemon.deleting  # neither evicted nor removed by its DaemonSet for the NoSchedule taint
    bare = next(r for r in on(st, "worker-1") if r.obj.meta.name == "server-1")
    no_toleration = replace(bare.obj, spec=replace(bare.obj.spec, tolerations=(Toleration("other", "Exists"),)))
    assert nodelifecycle.toleration_seconds(no_toleration) == 0.0
    short = replace(bare.obj, spec=replace(bare.obj.spec, tolerations=(
        Toleration("node.kubernetes.io/unreachable", "Exists", "", "NoExecute", 20),
        Toleration("", "Exists", "", "NoExecute", 100))))
    assert nodelifecycle.toleration_seconds(short) == 20.0


def test_a_node_that_posts_again_is_ready_untainted_and_its_pods_ready() -> None:
    st = running_state()
    st.stopped["worker-1"] = 0.0
    nodelifecycle.tick(st, 5.0)
    del st.stopped["worker-1"]
    assert nodelifecycle.tick(st, 6.0)
    node = render.node_object(st.config.node("worker-1"), st)
    assert node["status"]["conditions"][0]["status"] == "True" and "taints" not in node["spec"]
    assert all(r.status.ready for r in on(st, "worker-1"))
    assert nodelifecycle.due(st, 6.0) is None
