"""The disruption controller and the Eviction API's budget check.

A budget's status is computed from the pods it selects now (terminating ones do not count):
healthy means ready; the expected count is the selected pods' controllers' replicas (each
controller once) plus any bare pod, as the disruption controller takes the controllers' scale.
An eviction is refused while it would take the budget below what it protects (``429 Too Many
Requests`` upstream, "Cannot evict pod as it would violate the pod's disruption budget."); a
pod that is not ready may go when the budget is met without it (the default
unhealthyPodEvictionPolicy, IfHealthyBudget).
"""
from __future__ import annotations

from emulator.cluster.apimeta import meta as _meta
from emulator.cluster.store import ClusterState, Record
from emulator.model.disruption import Budget, PodDisruptionBudget, budget

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def _selected(state: ClusterState, pdb: PodDisruptionBudget) -> list[Record]:
    if pdb.selector is None:
        return []
    return [r for r in state.pods(pdb.meta.namespace)
            if not r.deleting and pdb.selector.matches(r.obj.meta.labels)]


def status(state: ClusterState, pdb: PodDisruptionBudget) -> Budget:
    pods = _selected(state, pdb)
    owners: dict[tuple[str, str], int] = {}
    bare = 0
    for rec in pods:
        owner = rec.obj.owner
        if owner is None:
            bare += 1
            continue
        controller = state.get(owner[0], rec.obj.meta.namespace, owner[1])
        # the controller's scale (a DaemonSet has none: its pods count, as they are one per node)
        scale = getattr(controller.obj, "replicas", None) if controller is not None else None
        owners[owner] = scale if scale is not None else owners.get(owner, 0) + 1
    return budget(pdb, sum(owners.values()) + bare, sum(1 for r in pods if r.status.ready))


def refusal(state: ClusterState, rec: Record) -> str:
    """Why the Eviction API would refuse to evict this pod now ("" when it would not)."""
    budgets = [r.obj for r in state.list("PodDisruptionBudget", rec.obj.meta.namespace)
               if r.obj.selector is not None and r.obj.selector.matches(rec.obj.meta.labels)]
    if not budgets:
        return ""
    if len(budgets) > 1:
        return "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    now = status(state, budgets[0])
    if not rec.status.ready:
        return "" if now.current_healthy >= now.desired_healthy else VIOLATION
    return "" if now.disruptions_allowed > 0 else VIOLATION


def pdb_object(rec: Record, state: ClusterState) -> dict:
    """A PodDisruptionBudget as the API server returns it, with the disruption controller's status."""
    pdb: PodDisruptionBudget = rec.obj
    spec: dict = {}
    if pdb.min_available is not None:
        spec["minAvailable"] = pdb.min_available
    if pdb.max_unavailable is not None:
        spec["maxUnavailable"] = pdb.max_unavailable
    if pdb.selector is not None:
        spec["selector"] = pdb.selector.to_dict()
    now = status(state, pdb)
    allowed = now.disruptions_allowed
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(rec), "spec": spec,
            "status": {"currentHealthy": now.current_healthy, "desiredHealthy": now.desired_healthy,
                       "disruptionsAllowed": allowed, "expectedPods": now.expected, "observedGeneration": 1,
                       "conditions": [{"type": "DisruptionAllowed", "status": "True" if allowed else "False",
                                       "reason": "SufficientPods" if allowed else "InsufficientPods",
                                       "message": ""}]}}
