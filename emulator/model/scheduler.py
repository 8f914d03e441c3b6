"""Pod placement: nodeName, nodeSelector, taints and free host ports filter; the least-loaded
node wins.

A tiny version of kube-scheduler's filter-then-score: spreading by pod count is what the
default scoring plugins amount to on identical, empty nodes. Ties go to the node listed first.
"""
from __future__ import annotations

import heapq
from typing import Sequence

from emulator.model.node import Node
from emulator.model.pod import PodSpec


class Unschedulable(Exception):
    pass


UNSCHEDULABLE_KEY = "node.kubernetes.io/unschedulable"  # the taint a cordoned node carries


def _why_not(node: Node, spec: PodSpec) -> str:
    """kube-scheduler's reason for one node, in its words."""
    labels = node.all_labels()
    if any(labels.get(k) != v for k, v in spec.node_selector.items()):
        return "didn't match Pod's node affinity/selector"
    for taint in node.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not any(
                t.tolerates(taint.key, taint.value, taint.effect) for t in spec.tolerations):
            return "were unschedulable" if taint.key == UNSCHEDULABLE_KEY else \
                f"had untolerated taint {{{taint.key}: {taint.value}}}"
    return ""


def _none_matches(nodes: Sequence[Node], spec: PodSpec) -> Unschedulable:
    """kube-scheduler's FailedScheduling message: how many nodes failed for each reason."""
    counts: dict[str, int] = {}
    for node in nodes:
        reason = _why_not(node, spec)
        if reason:
            counts[reason] = counts.get(reason, 0) + 1
    reasons = ", ".join(f"{n} node(s) {reason}" for reason, n in sorted(counts.items()))
    return Unschedulable(f"0/{len(nodes)} nodes are available: {reasons}.")


PortKey = tuple[str, str, int]  # protocol, hostIP ("" for every address), hostPort


def ports_conflict(wanted: tuple[tuple[str, str, int, int], ...], used: set[PortKey]) -> bool:
    """kube-scheduler's NodePorts filter: the same protocol and port on the same address, or on
    every address (hostIP unset or 0.0.0.0) on either side."""
    return any(proto == u_proto and port == u_port and (not ip or not u_ip or ip == u_ip)
               for proto, ip, port, _ in wanted for u_proto, u_ip, u_port in used)


def feasible(node: Node, spec: PodSpec) -> bool:
    return not _why_not(node, spec)


def schedule(spec: PodSpec, nodes: Sequence[Node], load: dict[str, int]) -> str:
    """Choose a node name for a pod.

    Raises:
        Unschedulable: with the reason kube-scheduler would put in the pod's events.
    """
    if spec.node_name:
        if spec.node_name not in {n.name for n in nodes}:
            raise Unschedulable(f"node {spec.node_name!r} does not exist")
        return spec.node_name
    candidates = [n for n in nodes if feasible(n, spec)]
    if not candidates:
        raise _none_matches(nodes, spec)
    return min(candidates, key=lambda n: (load.get(n.name, 0), n.index)).name


class Placer:
    """``schedule`` for many pods in one pass, at a cost that does not grow with nodes x pods:
    the feasible nodes are found once per distinct (nodeSelector, tolerations), and the
    least-loaded of them is kept in a heap whose keys may lag behind the loads (loads only grow
    while placing; an entry found stale is pushed back with the current load, so the first
    entry found current is the least-loaded node, ties to the node listed first). The caller
    counts each placed pod in ``load``, as with ``schedule``."""

    def __init__(self, nodes: Sequence[Node], load: dict[str, int],
                 used_ports: dict[str, set[PortKey]] | None = None) -> None:
        """``used_ports``: node -> host ports its pods hold; given, a pod with host ports goes
        only where they are free (and ``place`` records them); None: host ports are not checked."""
        self.nodes, self.load, self.used_ports = nodes, load, used_ports
        self.names = {n.name for n in nodes}
        self.heaps: dict[tuple, list[tuple[int, int, str]]] = {}

    def place(self, spec: PodSpec) -> str:
        """Raises:
            Unschedulable: as ``schedule``.
        """
        if spec.node_name:
            if spec.node_name not in self.names:
                raise Unschedulable(f"node {spec.node_name!r} does not exist")
            return spec.node_name
        if spec.host_ports and self.used_ports is not None:
            return self._place_with_ports(spec, self.used_ports)
        key = (tuple(sorted(spec.node_selector.items())), spec.tolerations)
        heap = self.heaps.get(key)
        if heap is None:
            heap = self.heaps[key] = [(self.load.get(n.name, 0), n.index, n.name) for n in self.nodes if feasible(n, spec)]
            heapq.heapify(heap)
        if not heap:
            raise _none_matches(self.nodes, spec)
        while True:
            load, index, name = heap[0]
            current = self.load.get(name, 0)
            if load == current:
                return name
            heapq.heapreplace(heap, (current, index, name))

    def _place_with_ports(self, spec: PodSpec, used: dict[str, set[PortKey]]) -> str:
        """A pod with host ports: a plain scan (such pods are few), recording what it takes."""
        feasible_nodes = [n for n in self.nodes if feasible(n, spec)]
        if not feasible_nodes:
            raise _none_matches(self.nodes, spec)
        free = [n for n in feasible_nodes if not ports_conflict(spec.host_ports, used.get(n.name, set()))]
        if not free:
            raise Unschedulable(f"0/{len(self.nodes)} nodes are available: {len(feasible_nodes)} node(s) "
                                "didn't have free ports for the requested pod ports")
        node = min(free, key=lambda n: (self.load.get(n.name, 0), n.index)).name
        used.setdefault(node, set()).update((proto, ip, port) for proto, ip, port, _ in spec.host_ports)
        return node
