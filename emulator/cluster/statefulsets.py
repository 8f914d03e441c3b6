"""The StatefulSet controller, as kube-controller-manager's: pods ``<name>-<ordinal>`` with the
set's name as hostname and its governing Service as subdomain (so the cluster DNS answers
``web-0.nginx.default.svc.cluster.local``), created in order and deleted in reverse.

OrderedReady: ordinal i is created once every lower ordinal is Running and Ready, and nothing
else happens while a pod is missing, starting or terminating; scaling down removes the highest
ordinal first, one at a time. Parallel: every missing pod is created and every surplus pod
deleted at once. Updates follow ``updateStrategy``: RollingUpdate deletes the highest-ordinal pod
of an old revision (index >= partition) once every pod is healthy, and it comes back with the
new template; OnDelete changes a pod only when someone deletes it.

``controller-revision-hash`` is ``<name>-<hash of the template>`` (revisions.py keeps each
revision's template, as ControllerRevisions do).
"""
from __future__ import annotations

import time
from dataclasses import replace

from emulator.cluster import accounts
from emulator.cluster.revisions import REVISION_LABEL, History, each, trim
from emulator.cluster.store import ClusterState, Record
from emulator.model import naming
from emulator.model.meta import ObjectMeta
from emulator.model.pod import Pod, PodTemplate
from emulator.model.workload import StatefulSet

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
SOURCE = "statefulset-controller"


def revision(sts: StatefulSet) -> str:
    """The ``controller-revision-hash`` of the set's template: ``<name>-<hash>``."""
    return f"{sts.meta.name}-{naming.pod_template_hash(sts.template.raw or repr(sts.template))}"


def ordinal_of(set_name: str, pod_name: str) -> int | None:
    """The ordinal of a pod named ``<set>-<n>``; None for another name."""
    head, _, tail = pod_name.rpartition("-")
    return int(tail) if head == set_name and tail.isdigit() and tail == str(int(tail)) else None


def healthy(rec: Record) -> bool:
    return not rec.deleting and rec.status.phase == "Running" and rec.status.ready


def available(rec: Record, sts: StatefulSet, now: float) -> bool:
    """Running, ready and ready for minReadySeconds (the controller's isRunningAndAvailable)."""
    return healthy(rec) and rec.status.available(sts.min_ready, now)


def pod_for(sts: StatefulSet, ordinal: int, rev: str, template: PodTemplate) -> Pod:
    """Ordinal ``ordinal``'s pod at revision ``rev``: the StatefulSet's labels on it, its name
    as hostname, the governing Service as subdomain (set in the spec as the API shows it too)."""
    name = f"{sts.meta.name}-{ordinal}"
    labels = {**template.labels, REVISION_LABEL: rev, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)}
    raw = {**template.spec.raw, "hostname": name}
    if sts.service_name:
        raw["subdomain"] = sts.service_name
    spec = replace(template.spec, hostname=name, subdomain=sts.service_name, raw=raw)
    return Pod(ObjectMeta(name, sts.meta.namespace, labels, dict(template.annotations)), spec, sts.source,
               ("StatefulSet", sts.meta.name))


def _create(state: ClusterState, sts: StatefulSet, ordinal: int, hist: History, update: str) -> bool:
    """Create ordinal ``ordinal`` (below the partition at the current revision, else the update
    revision); False when a pod of that name exists that the set does not own."""
    name = f"{sts.meta.name}-{ordinal}"
    if state.get("Pod", sts.meta.namespace, name) is not None:  # another's: the set waits, and says why
        state.events.warn("StatefulSet", sts.meta.namespace, sts.meta.name, "FailedCreate",
                          f'create Pod {name} in StatefulSet {sts.meta.name} failed error: pods "{name}" already '
                          "exists", source=SOURCE)
        return False
    if accounts.refused(state, "StatefulSet", sts, sts.template.spec, name, SOURCE):
        return False
    index = ordinal - sts.ordinals_start
    rev = hist.current if sts.update_strategy == "RollingUpdate" and index < sts.partition else update
    state.put("Pod", pod_for(sts, ordinal, rev, hist.templates.get(rev, sts.template)))
    state.events.normal("StatefulSet", sts.meta.namespace, sts.meta.name, "SuccessfulCreate",
                        f"create Pod {name} in StatefulSet {sts.meta.name} successful", source=SOURCE)
    return True


def _delete(state: ClusterState, sts: StatefulSet, rec: Record) -> None:
    rec.mark_deleting()
    state.events.normal("StatefulSet", sts.meta.namespace, sts.meta.name, "SuccessfulDelete",
                        f"delete Pod {rec.obj.meta.name} in StatefulSet {sts.meta.name} successful", source=SOURCE)


def _step(state: ClusterState, sts: StatefulSet, pods: list[Record], hist: History, update: str) -> None:
    """One step of one set towards its spec (the controller's updateStatefulSet)."""
    lo, hi = sts.ordinals_start, sts.ordinals_start + sts.replicas
    wanted: dict[int, Record] = {}
    condemned: list[tuple[int, Record]] = []
    for rec in pods:
        ordinal = ordinal_of(sts.meta.name, rec.obj.meta.name)
        if ordinal is None:
            continue
        if lo <= ordinal < hi:
            wanted[ordinal] = rec
        else:
            condemned.append((ordinal, rec))
    ordered = sts.pod_management == "OrderedReady"
    now = time.time()
    for ordinal in range(lo, hi):
        rec = wanted.get(ordinal)
        if rec is None:
            _create(state, sts, ordinal, hist, update)
            if ordered:
                return
        elif ordered and not available(rec, sts, now):
            return  # wait: the next ordinal starts once this one runs and is available
    condemned.sort(key=lambda c: -c[0])
    if ordered and condemned:
        if not any(rec.deleting for _, rec in condemned):
            _delete(state, sts, condemned[0][1])
        return
    for _, rec in condemned:
        if not rec.deleting:
            _delete(state, sts, rec)
    if condemned or sts.update_strategy != "RollingUpdate" or len(wanted) < sts.replicas:
        return
    if not all(available(rec, sts, now) for rec in wanted.values()):
        return  # one pod at a time: wait for the last one replaced to be available
    for ordinal in range(hi - 1, lo + sts.partition - 1, -1):
        rec = wanted[ordinal]
        if rec.obj.meta.labels.get(REVISION_LABEL) != update:
            _delete(state, sts, rec)
            return


def reconcile(state: ClusterState, children: dict[tuple[str, str, str], list[Record]]) -> None:
    """Every StatefulSet one step towards its spec; ``children``: pods by (owner kind,
    namespace, owner name). A set being deleted in the foreground makes no pods."""
    def named_as_mine(sts: StatefulSet, pod: Pod) -> bool:
        return ordinal_of(sts.meta.name, pod.meta.name) is not None
    for sts, hist, update, pods in each(state, "StatefulSet", children, revision, named_as_mine):
        _step(state, sts, pods, hist, update)
        _complete(hist, pods, sts, update)
        trim(hist, pods, update, sts.revision_history_limit)


def _counts(pods: list[Record], rev: str) -> tuple[int, int]:
    """(pods at revision ``rev``, pods Running and Ready)."""
    return (sum(1 for p in pods if p.obj.meta.labels.get(REVISION_LABEL) == rev),
            sum(1 for p in pods if p.status.phase == "Running" and p.status.ready))


def _complete(hist: History, pods: list[Record], sts: StatefulSet, update: str) -> None:
    """The update revision becomes current once every replica is at it and ready (the
    controller's completeRollingUpdate)."""
    updated, ready = _counts(pods, update)
    if updated == sts.replicas == ready == len(pods):
        hist.current = update


def status(state: ClusterState, rec: Record, pods: list[Record]) -> dict:
    """The set's status as the controller reports it (``pods``: the pods it owns, terminating
    ones too)."""
    sts: StatefulSet = rec.obj
    update = revision(sts)
    hist = state.workloads.get(("StatefulSet", sts.meta.namespace, sts.meta.name))
    current = hist.current if hist is not None and hist.current else update
    updated, ready = _counts(pods, update)
    current_count, _ = _counts(pods, current)
    now = time.time()
    return {"observedGeneration": 1, "replicas": len(pods), "readyReplicas": ready, "currentReplicas": current_count,
            "updatedReplicas": updated, "currentRevision": current, "updateRevision": update,
            "collisionCount": 0, "availableReplicas": sum(1 for p in pods if available(p, sts, now))}
