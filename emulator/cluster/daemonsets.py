"""The DaemonSet controller, as kube-controller-manager's: one pod on every node the template
may run on (its nodeSelector, the node's taints against its tolerations plus those every
daemon pod gets), none elsewhere.

Each pod is bound to its node as the controller binds it (a required node affinity on
``metadata.name``, shown in the pod; here the pod's nodeName is set from it, which the
scheduler honours). A cordoned node keeps its daemon pods and gets new ones (they tolerate
``node.kubernetes.io/unschedulable``). Updates follow ``updateStrategy``: RollingUpdate
replaces old pods while at most maxUnavailable nodes lack a ready pod (with maxSurge, the new
pod starts beside the old, which goes once the new one is ready); OnDelete only when someone
deletes a pod.
"""
from __future__ import annotations

import time
from dataclasses import replace

from emulator.cluster import accounts, nodes, rollout
from emulator.cluster.revisions import REVISION_LABEL, History, each, trim
from emulator.cluster.store import ClusterState, Record
from emulator.model import naming, scheduler
from emulator.model.meta import ObjectMeta
from emulator.model.pod import Pod, PodTemplate, Toleration
from emulator.model.workload import DaemonSet

GENERATION_LABEL = "pod-template-generation"
SOURCE = "daemonset-controller"
# what the controller adds to every daemon pod (AddOrUpdateDaemonPodTolerations); the last one
# only to hostNetwork pods
TOLERATIONS = (("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
               ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
               ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"))
HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def revision(ds: DaemonSet) -> str:
    """The ``controller-revision-hash`` of the template (the hash alone, as daemon pods carry it)."""
    return naming.pod_template_hash(ds.template.raw or repr(ds.template))


def daemon_template(template: PodTemplate) -> PodTemplate:
    """The template with the daemon tolerations added (in the model and in the API's view)."""
    wanted = TOLERATIONS + ((HOST_NETWORK_TOLERATION,) if template.spec.host_network else ())
    have = {(t.key, t.operator, t.effect) for t in template.spec.tolerations}
    extra = [(key, effect) for key, effect in wanted if (key, "Exists", effect) not in have]
    tolerations = template.spec.tolerations + tuple(Toleration(key, "Exists", "", effect) for key, effect in extra)
    raw = {**template.spec.raw, "tolerations": list(template.spec.raw.get("tolerations") or [])
           + [{"key": key, "operator": "Exists", "effect": effect} for key, effect in extra]}
    return replace(template, spec=replace(template.spec, tolerations=tolerations, raw=raw))


def eligible(state: ClusterState, ds: DaemonSet) -> list[str]:
    """The nodes that should run one of the set's pods, in node order."""
    spec = daemon_template(ds.template).spec
    return [n.name for n in nodes.schedulable_view(state) if scheduler.feasible(n, replace(spec, node_name=""))]


def pod_for(state: ClusterState, ds: DaemonSet, node: str, rev: str, generation: int) -> Pod:
    """A daemon pod bound to ``node`` at revision ``rev``."""
    template = daemon_template(ds.template)
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}
    spec = replace(template.spec, node_name=node, raw={**template.spec.raw, "affinity": affinity})
    labels = {**template.labels, REVISION_LABEL: rev, GENERATION_LABEL: str(generation)}
    while True:
        name = naming.generate_name(f"{ds.meta.name}-", state.rng)
        if state.get("Pod", ds.meta.namespace, name) is None:
            break
    return Pod(ObjectMeta(name, ds.meta.namespace, labels, dict(template.annotations)), spec, ds.source,
               ("DaemonSet", ds.meta.name))


def _node_of(rec: Record) -> str:
    return rec.status.node or rec.obj.spec.node_name


def _ready(rec: Record) -> bool:
    return not rec.deleting and rec.status.phase == "Running" and rec.status.ready


def _available(rec: Record, ds: DaemonSet, now: float) -> bool:
    """Ready for minReadySeconds (podutil.IsPodAvailable, which the rollout and numberAvailable use)."""
    return _ready(rec) and rec.status.available(ds.min_ready, now)


def _create(state: ClusterState, ds: DaemonSet, node: str, rev: str, hist: History) -> None:
    if accounts.refused(state, "DaemonSet", ds, ds.template.spec, f"{ds.meta.name}-", SOURCE):
        return
    pod = pod_for(state, ds, node, rev, list(hist.templates).index(rev) + 1)
    state.put("Pod", pod)
    state.events.normal("DaemonSet", ds.meta.namespace, ds.meta.name, "SuccessfulCreate",
                        f"Created pod: {pod.meta.name}", source=SOURCE)


def _delete(state: ClusterState, ds: DaemonSet, rec: Record) -> None:
    rec.mark_deleting()
    state.events.normal("DaemonSet", ds.meta.namespace, ds.meta.name, "SuccessfulDelete",
                        f"Deleted pod: {rec.obj.meta.name}", source=SOURCE)


def _step(state: ClusterState, ds: DaemonSet, pods: list[Record], hist: History, update: str) -> None:
    on_node: dict[str, list[Record]] = {}
    terminating: set[str] = set()
    for rec in sorted(pods, key=lambda r: r.created):
        if rec.deleting:
            terminating.add(_node_of(rec))
        else:
            on_node.setdefault(_node_of(rec), []).append(rec)
    targets = eligible(state, ds)
    now = time.time()
    waits_for_ports = bool(ds.template.spec.host_ports)  # a replacement waits for the old pod's host ports
    for node in targets:
        live = on_node.get(node, [])
        if not live and not (waits_for_ports and node in terminating):
            _create(state, ds, node, update, hist)
        new = [r for r in live if r.obj.meta.labels.get(REVISION_LABEL) == update]
        old = [r for r in live if r.obj.meta.labels.get(REVISION_LABEL) != update]
        surplus = new[1:] + (old if new and _available(new[0], ds, now) else old[1:])  # a surge over, or duplicates
        for rec in surplus:
            _delete(state, ds, rec)
    for node, live in on_node.items():
        # an unreachable node's NoSchedule taint keeps new pods off it, never removes running ones
        # (the controller's shouldContinueRunning looks at NoExecute taints only, which they tolerate)
        if node not in targets and node not in state.unknown:
            for rec in live:
                _delete(state, ds, rec)
    if ds.update_strategy == "RollingUpdate":
        _roll(state, ds, {n: on_node.get(n, []) for n in targets}, update, hist)


def _roll(state: ClusterState, ds: DaemonSet, per_node: dict[str, list[Record]], update: str, hist: History) -> None:
    """Replace old pods: with maxSurge, start new ones beside them (at most maxSurge nodes at
    once); else delete them while at most maxUnavailable nodes lack a ready pod, not-ready old
    pods first (they are unavailable anyway)."""
    desired = len(per_node)
    surge = rollout.scaled(ds.max_surge, desired, True)
    unavailable_max = rollout.scaled(ds.max_unavailable, desired, True) or (0 if surge else 1)
    old = {n: [r for r in live if r.obj.meta.labels.get(REVISION_LABEL) != update] for n, live in per_node.items()}
    if surge:
        surging = sum(1 for n, live in per_node.items() if old[n] and len(live) > 1)
        for node in sorted(n for n, live in per_node.items() if old[n] and len(live) == 1):
            if surging >= surge:
                break
            _create(state, ds, node, update, hist)
            surging += 1
        return
    now = time.time()
    unavailable = sum(1 for live in per_node.values() if not any(_available(r, ds, now) for r in live))
    for node in sorted(per_node, key=lambda n: (any(_available(r, ds, now) for r in old[n]), n)):
        for rec in old[node]:
            if not _available(rec, ds, now):
                _delete(state, ds, rec)
            elif unavailable < unavailable_max:
                _delete(state, ds, rec)
                unavailable += 1


def reconcile(state: ClusterState, children: dict[tuple[str, str, str], list[Record]]) -> None:
    """Every DaemonSet one step towards its spec; ``children``: pods by (owner kind,
    namespace, owner name)."""
    for ds, hist, update, pods in each(state, "DaemonSet", children, revision, lambda ds, pod: True):
        _step(state, ds, pods, hist, update)
        hist.current = update
        trim(hist, pods, update, ds.revision_history_limit)


def status(state: ClusterState, rec: Record, pods: list[Record]) -> dict:
    """The counts ``kubectl get ds`` prints (``pods``: the pods it owns, terminating ones too)."""
    ds: DaemonSet = rec.obj
    targets = set(eligible(state, ds))
    update = revision(ds)
    live = [p for p in pods if not p.deleting]
    scheduled = {_node_of(p) for p in live}
    ready = {_node_of(p) for p in live if _ready(p)}
    now = time.time()
    available = len({_node_of(p) for p in live if _available(p, ds, now)} & targets)
    updated = {_node_of(p) for p in live if p.obj.meta.labels.get(REVISION_LABEL) == update}
    return {"currentNumberScheduled": len(scheduled & targets), "desiredNumberScheduled": len(targets),
            "numberMisscheduled": len(scheduled - targets), "numberReady": len(ready & targets),
            "observedGeneration": 1, "updatedNumberScheduled": len(updated & targets), "numberAvailable": available,
            "numberUnavailable": len(targets) - available}
