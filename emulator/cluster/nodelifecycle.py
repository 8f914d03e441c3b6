"""kube-controller-manager's node lifecycle controller and its NoExecute taint eviction, for a
node whose kubelet stopped posting status (``k8semu node stop``, issue #16).

As in Kubernetes (pkg/controller/nodelifecycle, pkg/controller/tainteviction):
- a node whose kubelet has been silent for ``--node-monitor-grace-period`` (50 s since 1.32)
  gets Ready=Unknown ("Kubelet stopped posting node status."), the taints
  ``node.kubernetes.io/unreachable`` NoSchedule and NoExecute, and its pods Ready=False (so
  they leave their Services' endpoints at that moment, not before);
- a pod on a node tainted NoExecute is deleted when its toleration of the taint runs out
  (``tolerationSeconds``: 300 s from DefaultTolerationSeconds admission unless the pod says
  otherwise; none: tolerated forever, as DaemonSet pods; no toleration: at once). The kubelet
  is gone, so the pod stays Terminating until the node comes back; its controller replaces it
  elsewhere meanwhile (a ReplicaSet counts only pods not being deleted);
- a node that posts again is Ready, untainted, its pods ready as their probes say.
``spec.timeScale`` multiplies both timers (0.1: 5 s and 30 s), so a lab need not wait minutes.
"""
from __future__ import annotations

import time

from emulator.cluster.store import ClusterState
from emulator.model.node import Taint
from emulator.model.podadmission import UNREACHABLE

NODE_MONITOR_GRACE = 50.0  # kube-controller-manager --node-monitor-grace-period (1.32+; 40 s before)
UNREACHABLE_TAINTS = (Taint(UNREACHABLE, "NoSchedule"), Taint(UNREACHABLE, "NoExecute"))


def grace(state: ClusterState) -> float:
    return NODE_MONITOR_GRACE * state.config.time_scale


def toleration_seconds(pod, effect: str = "NoExecute") -> float | None:
    """How long the pod tolerates the unreachable NoExecute taint: None for ever, 0 not at all
    (the smallest of its matching tolerations' seconds, as the taint manager takes it)."""
    matching = [t for t in pod.spec.tolerations if t.tolerates(UNREACHABLE, "", effect)]
    if not matching:
        return 0.0
    if any(t.seconds is None for t in matching):
        return None
    return float(max(0, min(t.seconds for t in matching)))


def tick(state: ClusterState, now: float | None = None) -> bool:
    """One pass; True when a node or pod changed (the manager publishes a new view then)."""
    now = time.time() if now is None else now
    changed = False
    for node, since in state.stopped.items():
        if node not in state.unknown and now - since >= grace(state):
            state.unknown[node] = now
            state.events.normal("Node", "", node, "NodeNotReady", f"Node {node} status is now: NodeNotReady",
                                "node-controller")
            changed = True
    for node in [n for n in state.unknown if n not in state.stopped]:
        del state.unknown[node]
        state.events.normal("Node", "", node, "NodeReady", f"Node {node} status is now: NodeReady", "kubelet")
        changed = True
    for rec in state.pods():
        lost = rec.status.node in state.unknown
        if rec.status.node and lost != rec.status.node_lost:
            rec.status.node_lost = lost
            changed = True
        if not lost or rec.deleting:
            continue
        seconds = toleration_seconds(rec.obj)
        if seconds is not None and now >= state.unknown[rec.status.node] + seconds * state.config.time_scale:
            rec.mark_deleting()
            state.events.normal("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "TaintManagerEviction",
                                f"Marking for deletion Pod {rec.obj.meta.namespace}/{rec.obj.meta.name}",
                                "taint-eviction-controller")
            changed = True
    if changed:
        state.generation += 1
    return changed


def due(state: ClusterState, now: float | None = None) -> float | None:
    """Seconds until the next timer of this controller fires (None: none is running), so the
    manager's loop wakes for it rather than polling."""
    if not state.stopped and not state.unknown:
        return None
    now = time.time() if now is None else now
    times = [since + grace(state) for node, since in state.stopped.items() if node not in state.unknown]
    for rec in state.pods():
        if rec.status.node in state.unknown and not rec.deleting:
            seconds = toleration_seconds(rec.obj)
            if seconds is not None:
                times.append(state.unknown[rec.status.node] + seconds * state.config.time_scale)
    return max(0.0, min(times) - now) if times else None
