"""A Deployment's status as kube-controller-manager's deployment controller writes it
(pkg/controller/deployment: sync.go ``calculateStatus``, progress.go ``syncRolloutStatus``):
the replica counts and the ``Available`` and ``Progressing`` conditions that ``kubectl wait
--for=condition=Available`` and ``kubectl describe deployment`` read.

- Available: True (MinimumReplicasAvailable, "Deployment has minimum availability.") while at
  least ``replicas - maxUnavailable`` pods are available (maxUnavailable is 0 for Recreate and
  for 0 replicas), else False (MinimumReplicasUnavailable).
- Progressing (the default progressDeadlineSeconds, 600, makes the controller keep it):
  NewReplicaSetCreated when the current template's ReplicaSet first appears; ReplicaSetUpdated
  ("ReplicaSet "x" is progressing.") whenever a pass sees progress (more updated, ready or
  available pods, fewer old ones); NewReplicaSetAvailable ("ReplicaSet "x" has successfully
  progressed.") once every replica is updated and available, kept until the next rollout. The
  deadline: with no progress for progressDeadlineSeconds (default 600) since the condition last
  changed, Progressing turns False with ProgressDeadlineExceeded ("ReplicaSet "x" has timed out
  progressing."), which ``kubectl rollout status`` reports as an error; progress makes it True
  again.

A condition keeps its lastTransitionTime while its status stays, and its lastUpdateTime while
nothing about it changes, as ``SetDeploymentCondition`` does. Available means ready here
(minReadySeconds: a pod is available once it has been ready that long).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from emulator.cluster import rollout
from emulator.cluster.store import ClusterState, Record
from emulator.model import naming
from emulator.model.workload import Deployment

AVAILABLE, PROGRESSING = "Available", "Progressing"
TIMED_OUT = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class Counts:
    replicas: int  # pods of every ReplicaSet, not being deleted
    updated: int  # of those, the current template's
    ready: int
    available: int = -1  # ready for minReadySeconds; by default, without it, the ready ones

    def __post_init__(self) -> None:
        if self.available < 0:
            object.__setattr__(self, "available", self.ready)


@dataclass
class Condition:
    type: str
    status: str  # "True" / "False"
    reason: str
    message: str
    last_update: float
    last_transition: float

    def to_dict(self, stamp) -> dict:
        return {"type": self.type, "status": self.status, "lastUpdateTime": stamp(self.last_update),
                "lastTransitionTime": stamp(self.last_transition), "reason": self.reason, "message": self.message}


@dataclass
class Tracked:
    """What the controller remembers of one Deployment between passes."""

    conditions: dict[str, Condition] = field(default_factory=dict)
    counts: Counts | None = None
    new_replicaset: str = ""


# id(template) -> (template, its hash): every reconcile asks it of every Deployment (a quarter of
# a create's time on a 1,000-pod cluster), and a template never changes once made (frozen; an
# update makes a new one). The template is kept with its hash, so a reused id is never mistaken.
_HASHES: dict[int, tuple[object, str]] = {}
_HASHES_MAX = 4096


def template_hash(dep: Deployment) -> str:
    """The ``pod-template-hash`` of the Deployment's current template."""
    template = dep.template
    hit = _HASHES.get(id(template))
    if hit is not None and hit[0] is template:
        return hit[1]
    value = naming.pod_template_hash(template.raw or repr(template))
    if len(_HASHES) >= _HASHES_MAX:  # templates of Deployments long gone: start again
        _HASHES.clear()
    _HASHES[id(template)] = (template, value)
    return value


def replicaset_name(dep: Deployment) -> str:
    """The ReplicaSet of the Deployment's current template: ``<name>-<pod-template-hash>``."""
    return f"{dep.meta.name}-{template_hash(dep)}"


Ownership = tuple[dict[tuple[str, str], set[str]], dict[tuple[str, str], list[Record]]]


def ownership(state: ClusterState, namespace: str | None = None) -> Ownership:
    """(each Deployment's (namespace, name) -> its ReplicaSets' names, each (namespace, owner
    name) -> the pods it owns that are not being deleted), in one namespace or all; read once
    for every Deployment of a ``sync``: asked per Deployment, a namespace's pods were read once
    for each of its Deployments."""
    sets: dict[tuple[str, str], set[str]] = {}
    for r in state.list("ReplicaSet", namespace):
        if r.obj.owner and r.obj.owner[0] == "Deployment":
            sets.setdefault((r.obj.meta.namespace, r.obj.owner[1]), set()).add(r.obj.meta.name)
    pods: dict[tuple[str, str], list[Record]] = {}
    for p in state.pods(namespace):
        if p.obj.owner and not p.deleting:
            pods.setdefault((p.obj.meta.namespace, p.obj.owner[1]), []).append(p)
    return sets, pods


def counts(state: ClusterState, rec: Record, owned: Ownership | None = None) -> Counts:
    """The Deployment's pods: all, of its current template's ReplicaSet, ready, available
    (``owned``: a ``sync``'s index of every namespace; else its own namespace's is read)."""
    dep = rec.obj
    ns = dep.meta.namespace
    sets, owners = owned if owned is not None else ownership(state, ns)
    pods = [p for name in sets.get((ns, dep.meta.name), ()) for p in owners.get((ns, name), ())]
    newest, now = replicaset_name(dep), time.time()
    return Counts(len(pods), sum(1 for p in pods if p.obj.owner[1] == newest), sum(1 for p in pods if p.status.ready),
                  sum(1 for p in pods if p.status.available(dep.min_ready, now)))


def due(state: ClusterState, now: float) -> bool:
    """A pod of a ReplicaSet, StatefulSet or DaemonSet with minReadySeconds became available, or a rollout's progress
    deadline passed, since the last time this was asked: the manager then runs the controllers
    (the rollout's next step, the status) as it does for a change. Remembers when it was asked."""
    since, state.available_checked = state.available_checked, now
    for rec in state.list("Deployment"):  # a rollout's progress deadline passing
        tracked = state.deployments.get((rec.obj.meta.namespace, rec.obj.meta.name))
        progressing = tracked.conditions.get(PROGRESSING) if tracked else None
        if progressing is not None and progressing.status == "True" and progressing.reason != "NewReplicaSetAvailable" \
                and since <= progressing.last_update + rec.obj.progress_deadline < now:
            return True
    waits = {(kind, rec.obj.meta.namespace, rec.obj.meta.name): rec.obj.min_ready
             for kind in ("ReplicaSet", "StatefulSet", "DaemonSet") for rec in state.list(kind) if rec.obj.min_ready > 0}
    if not waits:  # the common case, every pass of the manager's loop: no pod list walked
        return False
    for p in state.pods():
        owner = p.obj.owner
        wait = waits.get((owner[0], p.obj.meta.namespace, owner[1])) if owner else None
        if wait and p.status.ready and p.status.ready_since and since < p.status.ready_since + wait <= now:
            return True
    return False


def _set(conds: dict[str, Condition], new: Condition) -> None:
    """``SetDeploymentCondition``: nothing changes for the same status and reason; a new reason
    with the same status keeps the transition time."""
    old = conds.get(new.type)
    if old is not None and old.status == new.status and old.reason == new.reason:
        return
    if old is not None and old.status == new.status:
        new.last_transition = old.last_transition
    conds.pop(new.type, None)
    conds[new.type] = new  # a changed condition moves to the end, as the controller's list does


def _max_unavailable(dep: Deployment) -> int:
    if dep.strategy != "RollingUpdate" or dep.replicas == 0:
        return 0
    return min(rollout.limits(dep)[1], dep.replicas)


def update(tracked: Tracked, dep: Deployment, now: Counts, new_replicaset_exists: bool, at: float) -> None:
    """One pass of the controller over one Deployment's conditions."""
    conds, before = tracked.conditions, tracked.counts
    newest = replicaset_name(dep)
    if new_replicaset_exists and tracked.new_replicaset != newest:
        tracked.new_replicaset = newest
        _set(conds, Condition(PROGRESSING, "True", "NewReplicaSetCreated", f'Created new replica set "{newest}"', at, at))
    if now.available >= dep.replicas - _max_unavailable(dep):
        _set(conds, Condition(AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                              at, at))
    else:
        _set(conds, Condition(AVAILABLE, "False", "MinimumReplicasUnavailable",
                              "Deployment does not have minimum availability.", at, at))
    current = conds.get(PROGRESSING)
    complete = current is not None and current.reason == "NewReplicaSetAvailable" and now.replicas == now.updated
    if complete:
        pass
    elif now.updated == now.replicas == now.available == dep.replicas:
        _set(conds, Condition(PROGRESSING, "True", "NewReplicaSetAvailable",
                              f'ReplicaSet "{newest}" has successfully progressed.', at, at))
    elif before is not None and (now.updated > before.updated or now.replicas - now.updated < before.replicas - before.updated
                                 or now.ready > before.ready or now.available > before.available):
        progressing = Condition(PROGRESSING, "True", "ReplicaSetUpdated", f'ReplicaSet "{newest}" is progressing.', at, at)
        if current is not None:  # the same reason again still moves lastUpdateTime
            if current.status == "True":
                progressing.last_transition = current.last_transition
            conds.pop(PROGRESSING)
        conds[PROGRESSING] = progressing
    elif current is not None and timed_out(current, dep, at):
        _set(conds, Condition(PROGRESSING, "False", TIMED_OUT, f'ReplicaSet "{newest}" has timed out progressing.',
                              at, at))
    tracked.counts = now


def timed_out(progressing: Condition, dep: Deployment, at: float) -> bool:
    """``DeploymentTimedOut``: no progress for progressDeadlineSeconds since the condition's
    lastUpdateTime (a completed rollout never times out; a timed-out one stays so)."""
    if progressing.reason == "NewReplicaSetAvailable":
        return False
    return progressing.reason == TIMED_OUT or progressing.last_update + dep.progress_deadline < at


def sync(state: ClusterState, tracked: dict[tuple[str, str], Tracked], at: float | None = None) -> None:
    """Update every Deployment's conditions (and forget those of Deployments gone)."""
    at = time.time() if at is None else at
    seen = set()
    owned = ownership(state)
    for rec in state.list("Deployment"):
        dep: Deployment = rec.obj
        key = (dep.meta.namespace, dep.meta.name)
        seen.add(key)
        exists = state.get("ReplicaSet", dep.meta.namespace, replicaset_name(dep)) is not None
        update(tracked.setdefault(key, Tracked()), dep, counts(state, rec, owned), exists, at)
    for key in [k for k in tracked if k not in seen]:
        del tracked[key]
