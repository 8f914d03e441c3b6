"""Node maintenance as the API and kubectl do it: cordon (``spec.unschedulable``, the
``node.kubernetes.io/unschedulable:NoSchedule`` taint), uncordon, and drain (cordon, then evict
each pod of the node through the Eviction API, which deletes it gracefully; its controller makes
a replacement, which the scheduler puts on another node).

kubectl drain refuses a node holding pods no controller would replace unless ``--force``; those
are then deleted for good. An eviction a PodDisruptionBudget forbids is refused, and kubectl
retries it every 5 s until the budget allows it (``cluster.disruption``).

Labels and annotations (``kubectl label node``, ``annotate node``) are the node's own to change:
the scheduler, DaemonSets and Calico's selectors (BGPPeers, IPPools) read them at once.
"""
from __future__ import annotations

from dataclasses import replace

from emulator.cluster import disruption, nodelifecycle
from emulator.cluster.store import ClusterState, Record
from emulator.errors import K8semuError, NotFoundError, Problem, SpecError, TooManyRequestsError
from emulator.model import validation
from emulator.model.calico import RR_ANNOTATION
from emulator.model.labelquery import parse_label_query
from emulator.model.node import Node, Taint
from emulator.model.scheduler import UNSCHEDULABLE_KEY

UNSCHEDULABLE_TAINT = Taint(UNSCHEDULABLE_KEY, "NoSchedule")


def _node(state: ClusterState, name: str) -> Node:
    node = next((n for n in state.config.nodes if n.name == name), None)
    if node is None:
        raise NotFoundError(f'nodes "{name}" not found')
    return node


def taints_of(state: ClusterState, node: Node) -> tuple[Taint, ...]:
    """The node's taints, the unschedulable one included while it is cordoned, the unreachable
    ones while its kubelet is silent past the grace period (``nodelifecycle``)."""
    return (node.taints + ((UNSCHEDULABLE_TAINT,) if node.name in state.cordoned else ())
            + (nodelifecycle.UNREACHABLE_TAINTS if node.name in state.unknown else ()))


def schedulable_view(state: ClusterState) -> list[Node]:
    """The nodes as the scheduler sees them, with the labels kubectl wrote: a cordoned node
    carries the unschedulable taint (a pod that tolerates it, as DaemonSet pods do, may still go
    there), an unreachable one its taints."""
    return [replace(n, taints=taints_of(state, n)) if n.name in state.cordoned or n.name in state.unknown else n
            for n in state.current_nodes()]


def set_metadata(state: ClusterState, name: str, labels: dict[str, str], annotations: dict[str, str],
                 system: dict[str, str]) -> bool:
    """``kubectl label node`` / ``annotate node``: the node's labels and annotations as the
    request leaves them; whether anything changed. The kubelet's own labels
    (``kubernetes.io/hostname``, the role) come back when removed, as a kubelet puts them back;
    the annotations a CNI writes (``system``: calico-node's address, flannel's backend) are
    kept as it writes them.

    Raises:
        NotFoundError: no such node.
        SpecError: a label or annotation the API server refuses, or a CNI's annotation changed.
    """
    node = _node(state, name)
    base = replace(node, labels={}).all_labels()
    problems = []
    for key, value in labels.items():
        why = validation.check_qualified_name(key) or validation.check_label_value(value)
        if why:
            problems.append(Problem(None, f"metadata.labels[{key}]", why))
    for key in annotations:
        why = validation.check_qualified_name(key)
        if why:
            problems.append(Problem(None, f"metadata.annotations[{key}]", why))
    for key, value in system.items():
        if annotations.get(key) != value:
            problems.append(Problem(None, f"metadata.annotations[{key}]", "written by the node's CNI agent, "
                                    "which keeps it as it is"))
    cid = annotations.get(RR_ANNOTATION)
    if cid is not None and not validation.is_ip(cid):
        problems.append(Problem(None, f"metadata.annotations[{RR_ANNOTATION}]",
                                f"{cid!r}: a route reflector cluster ID is an IPv4 address (244.0.0.1)"))
    if problems:
        raise SpecError(problems)
    mine = {k: v for k, v in labels.items() if base.get(k) != v}
    users = {k: v for k, v in annotations.items() if k not in system}
    changed = (mine, users) != (state.node_labels.get(name, node.labels),
                                state.node_annotations.get(name, {}))
    state.node_labels[name], state.node_annotations[name] = mine, users
    return changed


def cordon(state: ClusterState, name: str, unschedulable: bool = True) -> str:
    """``kubectl cordon`` / ``uncordon``; returns kubectl's line.

    Raises:
        NotFoundError: no such node.
    """
    _node(state, name)
    word = "cordoned" if unschedulable else "uncordoned"
    if (name in state.cordoned) == unschedulable:
        return f"node/{name} already {word}"
    if unschedulable:
        state.cordoned.add(name)
    else:
        state.cordoned.discard(name)
    return f"node/{name} {word}"


MIRROR = "kubernetes.io/config.mirror"


def _evictable(state: ClusterState, name: str) -> list[Record]:
    return sorted((r for r in state.pods() if r.status.node == name and not r.deleting),
                  key=lambda r: r.obj.key)


def evict(state: ClusterState, rec: Record) -> str:
    """The Eviction API: a graceful delete of the pod (its terminationGracePeriodSeconds and
    preStop hooks apply); returns kubectl drain's line."""
    rec.mark_deleting()
    return f"pod/{rec.obj.meta.name} evicted"


def evict_pod(state: ClusterState, namespace: str, name: str) -> str:
    """The Eviction subresource (``POST pods/NAME/eviction``, what ``kubectl drain`` sends):
    the pod goes if its PodDisruptionBudget allows it now; one already being deleted is
    deleted again (a no-op), as the API server skips the budget for it.

    Raises:
        NotFoundError: no such pod.
        TooManyRequestsError: its budget refuses (the message is the API server's).
    """
    rec = state.get("Pod", namespace, name)
    if rec is None:
        raise NotFoundError(f'pods "{name}" not found')
    why = "" if rec.deleting else disruption.refusal(state, rec)
    if why:
        raise TooManyRequestsError(why)
    return evict(state, rec)


def drain(state: ClusterState, name: str, force: bool = False, pod_selector: str = "",
          ignore_daemonsets: bool = False) -> dict:
    """One pass of ``kubectl drain``: cordon, then evict every pod of the node (those matching
    ``pod_selector``, a ``-l`` query, when given) that its PodDisruptionBudget lets go, but
    DaemonSet pods, which ``ignore_daemonsets`` leaves (without it they stop the drain, as kubectl's). Returns
    {"lines": kubectl's lines, "evicted": [ns/name], "refused": [ns/name]}; kubectl retries the
    refused ones every 5 s (the client does).

    Raises:
        NotFoundError: no such node.
        K8semuError: ``pod_selector`` is not a label query (checked before cordoning, as
            kubectl does), or the node holds pods no controller would replace and ``force`` is
            off (the node stays cordoned and nothing is evicted, as kubectl leaves it).
    """
    try:
        selector = parse_label_query(pod_selector)
    except ValueError as exc:
        raise K8semuError(f"--pod-selector=<pod_selector> must be a valid label selector ({exc})") from None
    lines = [cordon(state, name)]
    pods = [r for r in _evictable(state, name) if selector.matches(r.obj.meta.labels)]
    # a DaemonSet's pod would come straight back (it tolerates the cordon): left running, as
    # kubectl drain --ignore-daemonsets leaves it
    daemons = [r for r in pods if r.obj.owner and r.obj.owner[0] == "DaemonSet"]
    # a static pod's mirror is the kubelet's, not the API's to evict: kubectl drain leaves it
    pods = [r for r in pods if r not in daemons and MIRROR not in r.obj.meta.annotations]
    bare = [r for r in pods if r.obj.owner is None]
    if daemons and not ignore_daemonsets:
        raise K8semuError(f'unable to drain node "{name}" due to error: cannot delete DaemonSet-managed Pods '
                          "(use --ignore-daemonsets to ignore): " + ", ".join(r.obj.key for r in daemons))
    if bare and not force:
        listed = ", ".join(r.obj.key for r in bare)
        raise K8semuError(f'unable to drain node "{name}" due to error: cannot delete Pods declare no '
                          f"controller (use --force to override): {listed}")
    if daemons:
        lines.append("Warning: ignoring DaemonSet-managed Pods: " + ", ".join(r.obj.key for r in daemons))
    if bare:
        lines.append("Warning: deleting Pods that declare no controller: " + ", ".join(r.obj.key for r in bare))
    evicted, refused = [], []
    for rec in pods:
        lines.append(f"evicting pod {rec.obj.key}")
        why = disruption.refusal(state, rec)  # recomputed after each eviction, as the API does
        if why:
            lines.append(f'error when evicting pods/"{rec.obj.meta.name}" -n "{rec.obj.meta.namespace}" '
                         f"(will retry after 5s): {why}")
            refused.append(rec.obj.key)
            continue
        lines.append(evict(state, rec))
        evicted.append(rec.obj.key)
    return {"lines": lines, "evicted": evicted, "refused": refused}
