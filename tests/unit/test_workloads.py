"""StatefulSet and DaemonSet controllers on a simulated state: ordinals, order, scaling,
updates, node coverage, status, and the spec checks."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from emulator.api.tables import PRINTERS
from emulator.cluster import controllers, daemonsets, deploystatus, nodes, render, render_workloads, statefulsets
from emulator.errors import K8semuError, SpecError
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents
from tests.unit.test_controllers import default_state, make_ready, settle

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: %(replicas)d
  podManagementPolicy: %(policy)s
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers: [{name: nginx, image: %(image)s}]
"""
DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  %(spec)s
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      %(extra)s
      containers: [{name: agent, image: %(image)s}]
"""


def objects(text: str) -> list:
    return parse_documents(load_text(text, "test.yaml")).objects


def sts(replicas: int = 3, policy: str = "OrderedReady", image: str = "nginx") -> list:
    return objects(STS % {"replicas": replicas, "policy": policy, "image": image})


def ds(image: str = "busybox", extra: str = "", spec: str = "") -> list:
    """``extra``: a line for the pod template's spec; ``spec``: one for the DaemonSet's."""
    return objects(DS % {"image": image, "extra": extra, "spec": spec})


def live(st, owner: str, namespace: str = "default") -> list:
    return sorted((r for r in st.pods(namespace) if r.obj.owner and r.obj.owner[1] == owner and not r.deleting),
                  key=lambda r: r.obj.meta.name)


def names(recs) -> list[str]:
    return [r.obj.meta.name for r in recs]


def step(st) -> None:
    """One kubelet round: scheduled pods become ready, deleted ones go; then the controllers."""
    for r in list(st.pods()):
        if r.deleting:
            controllers.forget_pod(st, r)
        elif r.status.node and not r.status.ready:
            make_ready(r)
    controllers.reconcile(st)


def test_statefulset_starts_its_pods_in_order_each_once_the_previous_is_ready():
    st = default_state()
    controllers.apply(st, sts())
    assert names(live(st, "web")) == ["web-0"]
    controllers.reconcile(st)
    assert names(live(st, "web")) == ["web-0"]  # web-0 not ready yet: web-1 waits
    step(st)
    assert names(live(st, "web")) == ["web-0", "web-1"]
    settle(st)
    pods = live(st, "web")
    assert names(pods) == ["web-0", "web-1", "web-2"]
    for i, rec in enumerate(pods):
        assert (rec.obj.spec.hostname, rec.obj.spec.subdomain) == (f"web-{i}", "nginx")
        assert rec.obj.meta.labels[statefulsets.POD_NAME_LABEL] == f"web-{i}"
        assert rec.obj.meta.labels[statefulsets.POD_INDEX_LABEL] == str(i)
        assert rec.obj.meta.labels["controller-revision-hash"] == statefulsets.revision(st.get("StatefulSet", "default", "web").obj)


def test_statefulset_scales_down_from_the_highest_ordinal_one_at_a_time():
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    controllers.scale(st, "StatefulSet", "default", "web", 1)
    deleting = [r.obj.meta.name for r in st.pods("default") if r.deleting]
    assert deleting == ["web-2"]
    step(st)
    assert [r.obj.meta.name for r in st.pods("default") if r.deleting] == ["web-1"]
    settle(st)
    assert names(live(st, "web")) == ["web-0"]


def test_parallel_statefulset_creates_and_deletes_at_once():
    st = default_state()
    controllers.apply(st, sts(4, "Parallel"))
    assert names(live(st, "web")) == ["web-0", "web-1", "web-2", "web-3"]
    controllers.scale(st, "StatefulSet", "default", "web", 1)
    assert sorted(r.obj.meta.name for r in st.pods("default") if r.deleting) == ["web-1", "web-2", "web-3"]


def test_rolling_update_replaces_pods_from_the_highest_ordinal_and_completes_the_revision():
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    old = statefulsets.revision(st.get("StatefulSet", "default", "web").obj)
    controllers.apply(st, sts(image="busybox"))
    new = statefulsets.revision(st.get("StatefulSet", "default", "web").obj)
    assert new != old
    assert [r.obj.meta.name for r in st.pods("default") if r.deleting] == ["web-2"]
    obj = render.objects(st, "StatefulSet", "default")[0]
    assert (obj["status"]["currentRevision"], obj["status"]["updateRevision"]) == (old, new)
    settle(st)
    assert {r.obj.meta.labels["controller-revision-hash"] for r in live(st, "web")} == {new}
    assert {r.obj.spec.containers[0].image for r in live(st, "web")} == {"busybox"}
    status = render.objects(st, "StatefulSet", "default")[0]["status"]
    assert status["currentRevision"] == status["updateRevision"] == new
    assert (status["replicas"], status["readyReplicas"], status["currentReplicas"], status["updatedReplicas"]) == (3, 3, 3, 3)


def test_partition_keeps_lower_ordinals_on_the_old_revision_even_when_recreated():
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    old = statefulsets.revision(st.get("StatefulSet", "default", "web").obj)
    text = (STS % {"replicas": 3, "policy": "OrderedReady", "image": "busybox"}).replace(
        "  podManagementPolicy", "  updateStrategy: {rollingUpdate: {partition: 2}}\n  podManagementPolicy")
    controllers.apply(st, objects(text))
    settle(st)
    revs = {r.obj.meta.name: r.obj.meta.labels["controller-revision-hash"] for r in live(st, "web")}
    assert revs["web-0"] == revs["web-1"] == old != revs["web-2"]
    controllers.delete(st, "Pod", "default", "web-0")
    settle(st)
    assert live(st, "web")[0].obj.meta.labels["controller-revision-hash"] == old
    assert live(st, "web")[0].obj.spec.containers[0].image == "nginx"


def test_a_deleted_statefulset_pod_comes_back_with_its_name_and_deleting_the_set_deletes_its_pods():
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    uid = st.get("Pod", "default", "web-1").uid
    controllers.delete(st, "Pod", "default", "web-1")
    settle(st)
    assert names(live(st, "web")) == ["web-0", "web-1", "web-2"]
    assert st.get("Pod", "default", "web-1").uid != uid
    controllers.delete(st, "StatefulSet", "default", "web")
    assert live(st, "web") == []
    settle(st)
    assert not st.workloads


def test_statefulset_table_and_scale_subresource_view():
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    obj = render.objects(st, "StatefulSet", "default")[0]
    assert obj["spec"]["serviceName"] == "nginx" and obj["spec"]["updateStrategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    pod = render.objects(st, "Pod", "default")
    web0 = next(p for p in pod if p["metadata"]["name"] == "web-0")
    assert web0["spec"]["hostname"] == "web-0" and web0["spec"]["subdomain"] == "nginx"
    assert web0["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"


def test_daemonset_runs_one_pod_on_every_node_it_tolerates():
    st = default_state()
    controllers.apply(st, ds())
    workers = {n.name for n in st.config.nodes if n.role == "worker"}
    assert {r.obj.spec.node_name for r in live(st, "agent", "kube-system")} == workers  # control-plane is tainted
    st2 = default_state()
    controllers.apply(st2, ds(extra="tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, "
                                     "effect: NoSchedule}]"))
    assert len(live(st2, "agent", "kube-system")) == len(st2.config.nodes)
    settle(st2)
    status = render.objects(st2, "DaemonSet", "kube-system")[0]["status"]
    n = len(st2.config.nodes)
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberReady"],
            status["updatedNumberScheduled"], status["numberAvailable"]) == (n, n, n, n, n)
    pod = live(st2, "agent", "kube-system")[0].obj
    keys = {t.key for t in pod.spec.tolerations}
    assert {"node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready"} <= keys
    assert pod.spec.raw["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchFields"][0]["values"] == [pod.spec.node_name]


def test_daemonset_follows_its_node_selector_and_stays_on_a_cordoned_node_through_a_drain():
    st = default_state()
    controllers.apply(st, ds(extra="nodeSelector: {kubernetes.io/hostname: worker-1}"))
    assert [r.obj.spec.node_name for r in live(st, "agent", "kube-system")] == ["worker-1"]
    settle(st)
    with pytest.raises(K8semuError, match=r"cannot delete DaemonSet-managed Pods \(use --ignore-daemonsets"):
        nodes.drain(st, "worker-1", force=True)
    done = nodes.drain(st, "worker-1", force=True, ignore_daemonsets=True)
    assert any(line.startswith("Warning: ignoring DaemonSet-managed Pods: kube-system/agent-") for line in done["lines"])
    assert len(live(st, "agent", "kube-system")) == 1


def test_daemonset_rolling_update_replaces_one_node_at_a_time():
    st = default_state()
    controllers.apply(st, ds())
    settle(st)
    controllers.apply(st, ds(image="nginx"))
    assert len([r for r in st.pods("kube-system") if r.deleting]) == 1  # maxUnavailable 1
    controllers.reconcile(st)
    assert len([r for r in st.pods("kube-system") if r.deleting]) == 1
    settle(st)
    assert {r.obj.spec.containers[0].image for r in live(st, "agent", "kube-system")} == {"nginx"}
    assert len(live(st, "agent", "kube-system")) == 2


@pytest.mark.parametrize("text, field, message", [
    (STS.replace("podManagementPolicy: %(policy)s", "podManagementPolicy: Sometimes"), "spec.podManagementPolicy",
     'Unsupported value: "Sometimes"'),
    (STS.replace("serviceName: nginx", "serviceName: Nginx_svc"), "spec.serviceName", "DNS-1123 label"),
    (STS.replace("name: web}", "name: web.v1}"), "metadata.name", "'<name>-<ordinal>'"),
    (DS.replace("  selector:", "  replicas: 2\n  selector:"), "spec.replicas", "unknown field 'replicas'"),
    (DS.replace("  selector:", "  updateStrategy: {type: OnDelete, rollingUpdate: {maxUnavailable: 2}}\n  selector:"),
     "spec.updateStrategy.rollingUpdate", "Forbidden"),
])
def test_workload_specs_refused_as_the_api_server_refuses_them(text, field, message):
    with pytest.raises(SpecError) as err:
        objects(text % {"replicas": 2, "policy": "Parallel", "image": "nginx", "extra": "", "spec": ""})
    assert any(p.field == field and message in p.message for p in err.value.problems), err.value.problems


def test_pods_orphaned_by_a_deleted_statefulset_are_adopted_when_it_comes_back():
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    uids = {r.obj.meta.name: r.uid for r in live(st, "web")}
    controllers.delete(st, "StatefulSet", "default", "web", propagation="Orphan")
    assert all(r.obj.owner is None for r in st.pods("default") if statefulsets.ordinal_of("web", r.obj.meta.name) is not None)
    controllers.delete(st, "Pod", "default", "web-0")
    settle(st)
    controllers.apply(st, sts())
    settle(st)
    pods = live(st, "web")
    assert names(pods) == ["web-0", "web-1", "web-2"]
    assert {r.obj.meta.name: r.uid for r in pods if r.obj.meta.name != "web-0"} == {
        k: v for k, v in uids.items() if k != "web-0"}
    assert all(r.obj.owner == ("StatefulSet", "web") for r in pods)


def test_a_deleted_predecessor_is_recreated_while_a_later_pod_is_unhealthy():
    """statefulset.go "should not deadlock when a pod's predecessor fails"."""
    st = default_state()
    controllers.apply(st, sts(2))
    step(st)
    web1 = st.get("Pod", "default", "web-1")
    assert web1 is not None and not web1.status.ready
    controllers.delete(st, "Pod", "default", "web-0")
    controllers.forget_pod(st, st.get("Pod", "default", "web-0"))
    assert names(live(st, "web")) == ["web-0", "web-1"]


def test_going_back_to_a_prior_template_is_a_rollback_to_its_revision():
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    first = statefulsets.revision(st.get("StatefulSet", "default", "web").obj)
    controllers.apply(st, sts(image="busybox"))
    settle(st)
    controllers.apply(st, sts())
    settle(st)
    status = render.objects(st, "StatefulSet", "default")[0]["status"]
    assert status["currentRevision"] == status["updateRevision"] == first


def test_controller_revisions_number_each_template_and_a_rollback_renumbers_the_old_one():
    """As the StatefulSet controller keeps ControllerRevisions: one per template, ``<set>-<hash>``,
    owned by the set, numbered in order; going back to a template renumbers its revision to the
    next number (kubectl rollout history lists it last), and ``data`` puts that template back."""
    st = default_state()
    controllers.apply(st, sts())
    settle(st)
    uid = st.get("StatefulSet", "default", "web").uid
    first = statefulsets.revision(st.get("StatefulSet", "default", "web").obj)
    controllers.apply(st, sts(image="busybox"))
    settle(st)
    second = statefulsets.revision(st.get("StatefulSet", "default", "web").obj)
    revisions = {o["metadata"]["name"]: o for o in render.objects(st, "ControllerRevision", "default")}
    assert {name: o["revision"] for name, o in revisions.items()} == {first: 1, second: 2}
    assert revisions[first]["metadata"]["ownerReferences"][0]["uid"] == uid
    assert revisions[first]["metadata"]["labels"]["controller-revision-hash"] == first
    template = revisions[first]["data"]["spec"]["template"]
    assert template["$patch"] == "replace" and template["spec"]["containers"][0]["image"] == "nginx"
    controllers.apply(st, sts())  # the first template again: a rollback
    settle(st)
    numbers = {o["metadata"]["name"]: o["revision"] for o in render.objects(st, "ControllerRevision", "default")}
    assert numbers == {first: 3, second: 2}
    row = PRINTERS["ControllerRevision"][2](revisions[second], False)
    assert row[:3] == [second, "statefulset.apps/web", "2"]


def test_on_delete_changes_a_pod_only_when_it_is_deleted():
    st = default_state()
    text = STS.replace("  podManagementPolicy", "  updateStrategy: {type: OnDelete}\n  podManagementPolicy")
    controllers.apply(st, objects(text % {"replicas": 2, "policy": "Parallel", "image": "nginx"}))
    settle(st)
    controllers.apply(st, objects(text % {"replicas": 2, "policy": "Parallel", "image": "busybox"}))
    settle(st)
    assert {r.obj.spec.containers[0].image for r in live(st, "web")} == {"nginx"}
    controllers.delete(st, "Pod", "default", "web-1")
    settle(st)
    assert [r.obj.spec.containers[0].image for r in live(st, "web")] == ["nginx", "busybox"]
    st2 = default_state()
    on_delete = "updateStrategy: {type: OnDelete}"
    controllers.apply(st2, ds(spec=on_delete))
    settle(st2)
    controllers.apply(st2, ds(image="nginx", spec=on_delete))
    settle(st2)
    assert {r.obj.spec.containers[0].image for r in live(st2, "agent", "kube-system")} == {"busybox"}


def test_a_pod_whose_labels_leave_the_selector_is_released():
    """statefulset.go "should adopt matching orphans and release non-matching pods"."""
    st = default_state()
    controllers.apply(st, sts(1))
    settle(st)
    rec = st.get("Pod", "default", "web-0")
    st.put("Pod", replace(rec.obj, meta=replace(rec.obj.meta, labels={**rec.obj.meta.labels, "app": "other"})))
    controllers.reconcile(st)
    assert st.get("Pod", "default", "web-0").obj.owner is None


def test_daemonset_surge_starts_the_new_pod_beside_the_old_one():
    """daemon_set.go "should surge pods onto nodes when spec was updated and update strategy is RollingUpdate"."""
    st = default_state()
    surge = "updateStrategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"
    controllers.apply(st, ds(spec=surge))
    settle(st)
    controllers.apply(st, ds(image="nginx", spec=surge))
    pods = live(st, "agent", "kube-system")
    assert len(pods) == 3 and not any(r.deleting for r in st.pods("kube-system") if r.obj.owner == ("DaemonSet", "agent"))
    settle(st)
    assert {r.obj.spec.containers[0].image for r in live(st, "agent", "kube-system")} == {"nginx"}
    assert len(live(st, "agent", "kube-system")) == 2


def test_a_daemonset_created_again_adopts_the_pods_it_orphaned():
    st = default_state()
    controllers.apply(st, ds())
    settle(st)
    uids = {r.uid for r in live(st, "agent", "kube-system")}
    controllers.delete(st, "DaemonSet", "kube-system", "agent", propagation="Orphan")
    controllers.apply(st, ds())
    settle(st)
    assert {r.uid for r in live(st, "agent", "kube-system")} == uids
    assert all(r.obj.owner == ("DaemonSet", "agent") for r in live(st, "agent", "kube-system"))


def test_a_pod_of_the_sets_name_it_does_not_own_stops_it_visibly():
    st = default_state()
    controllers.apply(st, objects("apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, labels: {app: other}}\n"
                                  "spec: {containers: [{name: c, image: nginx}]}\n"))
    controllers.apply(st, sts())
    assert live(st, "web") == []
    assert any(e.reason == "FailedCreate" and 'pods "web-0" already exists' in e.message
               for e in st.events.about("StatefulSet", "default", "web"))


def _ready_for(recs, seconds: float) -> None:
    """As the kubelet reports pods ready (for ``seconds`` now)."""
    for rec in recs:
        make_ready(rec)
        rec.status.ready_since = time.time() - seconds


def test_statefulset_min_ready_seconds_waits_for_each_pod_to_be_available():
    st = default_state()
    controllers.apply(st, objects(STS.replace("  serviceName: nginx", "  serviceName: nginx\n  minReadySeconds: 30")
                                  % {"replicas": 2, "policy": "OrderedReady", "image": "nginx"}))
    sts_rec = st.get("StatefulSet", "default", "web")
    assert render_workloads.statefulset_object(sts_rec, st)["spec"]["minReadySeconds"] == 30
    _ready_for(live(st, "web"), 1)
    controllers.reconcile(st)
    assert names(live(st, "web")) == ["web-0"]  # ready, not yet available: web-1 waits
    status = statefulsets.status(st, sts_rec, live(st, "web"))
    assert (status["readyReplicas"], status.get("availableReplicas")) == (1, 0)
    now = time.time()
    assert not deploystatus.due(st, now)
    assert deploystatus.due(st, now + 30)  # web-0 becomes available: the manager's loop runs the controllers
    _ready_for(live(st, "web"), 31)
    controllers.reconcile(st)
    assert names(live(st, "web")) == ["web-0", "web-1"]
    assert statefulsets.status(st, sts_rec, live(st, "web"))["availableReplicas"] == 1


def test_daemonset_min_ready_seconds_holds_the_rollout_until_the_new_pod_is_available():
    st = default_state()
    controllers.apply(st, ds(spec="minReadySeconds: 30"))
    settle(st)
    controllers.apply(st, ds(image="nginx", spec="minReadySeconds: 30"))
    assert len([r for r in st.pods("kube-system") if r.deleting and r.obj.owner == ("DaemonSet", "agent")]) == 1
    step(st)  # the old pod gone, its replacement created
    _ready_for([r for r in live(st, "agent", "kube-system") if r.obj.spec.containers[0].image == "nginx"], 1)
    controllers.reconcile(st)
    images = sorted(r.obj.spec.containers[0].image for r in live(st, "agent", "kube-system"))
    assert images == ["busybox", "nginx"]  # the new pod is ready but not available: the next node waits
    ds_rec = st.get("DaemonSet", "kube-system", "agent")
    status = daemonsets.status(st, ds_rec, live(st, "agent", "kube-system"))
    assert (status["numberReady"], status["numberAvailable"]) == (2, 1)
    _ready_for([r for r in live(st, "agent", "kube-system") if r.obj.spec.containers[0].image == "nginx"], 31)
    controllers.reconcile(st)
    assert len([r for r in st.pods("kube-system") if r.deleting and r.obj.owner == ("DaemonSet", "agent")]) == 1
