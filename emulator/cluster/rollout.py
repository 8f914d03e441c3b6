"""How a Deployment moves from its old ReplicaSets to the one of its current template, as
kube-controller-manager's deployment controller does it (pkg/controller/deployment: rolling.go,
recreate.go), so that a rollout keeps a Service's endpoints as a cluster does.

RollingUpdate: the new ReplicaSet grows while every ReplicaSet's replicas together stay within
``replicas + maxSurge``; the old ones shrink while at least ``replicas - maxUnavailable`` pods
are available (unhealthy old pods go first, then the oldest ReplicaSets'). maxSurge rounds up,
maxUnavailable down, as percentages of ``replicas``; both 0 means maxUnavailable 1. Each pass
takes one step; the next comes when pods become ready, so the controller loop drives the
rollout at the pace of readiness probes. Recreate: every old ReplicaSet goes to zero, and the
new one grows only once no old pod exists any more.

Available means ready for minReadySeconds (``PodStatus.available``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from emulator.model.workload import Deployment


@dataclass(frozen=True)
class Revision:
    """One ReplicaSet of a Deployment as the rollout sees it."""

    name: str
    replicas: int  # spec.replicas
    available: int  # its ready pods not being deleted
    pods: int  # its pods, terminating ones too
    revision: int


def scaled(value: int | str, total: int, round_up: bool) -> int:
    """An IntOrString count (``N`` or ``N%`` of ``total``) as a number of pods."""
    if isinstance(value, str):
        exact = int(value.rstrip("%")) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return value


def limits(dep: Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as counts of pods."""
    surge = scaled(dep.max_surge, dep.replicas, True)
    unavailable = scaled(dep.max_unavailable, dep.replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def new_replicas(dep: Deployment, new: Revision | None, old: list[Revision]) -> int:
    """spec.replicas for the ReplicaSet of the current template, this pass."""
    have = new.replicas if new else 0
    if dep.strategy == "Recreate":
        if any(o.replicas or o.pods for o in old):
            return min(have, dep.replicas)  # the old pods go first
        return dep.replicas
    if have >= dep.replicas:
        return dep.replicas
    surge, _ = limits(dep)
    room = dep.replicas + surge - (have + sum(o.replicas for o in old))
    return have + max(0, min(room, dep.replicas - have))


def old_replicas(dep: Deployment, new_count: int, new_available: int, old: list[Revision]) -> dict[str, int]:
    """spec.replicas this pass for the old ReplicaSets whose count changes."""
    if dep.strategy == "Recreate":
        return {o.name: 0 for o in old if o.replicas}
    _, unavailable = limits(dep)
    minimum = dep.replicas - unavailable
    oldest_first = sorted(old, key=lambda o: o.revision)
    counts = {o.name: o.replicas for o in old}
    # first the old pods that are not available anyway, within what may be scaled down at all
    budget = new_count + sum(counts.values()) - minimum - (new_count - new_available)
    if budget <= 0:  # the new pods are not available yet: nothing old may go
        return {}
    for o in oldest_first:
        if budget <= 0:
            break
        cut = min(budget, counts[o.name] - o.available)
        if cut > 0:
            counts[o.name] -= cut
            budget -= cut
    # then available ones, while enough stay available
    spare = new_available + sum(o.available for o in old) - minimum
    for o in oldest_first:
        if spare <= 0:
            break
        cut = min(spare, counts[o.name])
        counts[o.name] -= cut
        spare -= cut
    return {o.name: counts[o.name] for o in old if counts[o.name] != o.replicas}
