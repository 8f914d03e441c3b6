"""All flows of one node's switch for a network view: the entry point of the pipeline.

A view never fails as a whole. Features derive flows per object; two flows with the same table,
priority and match are merged when they do the same thing, and when they do not, the first
owner's (in the order below: pipeline, node, pods, overlay, Services, policy) is kept and the
other is reported as a problem against its owner's cookie, so that one bad object is refused
alone and visibly while every other object's flows are installed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.pipeline.cookie import Category, split
from emulator.pipeline.features import overlay, pod_connectivity, policy, service
from emulator.pipeline.flow import Flow, Group
from emulator.model.netview import NetworkView


@dataclass
class NodeFlows:
    flows: list[Flow] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (cookie of the refused flow, why)


class Memo:
    """Flows per (feature, node, object), kept from one view to the next, so that a change
    recomputes only the flows of the objects it touched (a pod deleted from a 1,000-endpoint
    Service: its two flows per node, not the node's thousands). An entry not used while building
    one whole view is dropped with the next ``rotate``: memory follows the cluster, not its history.
    Values are tuples of frozen flows, safe to share."""

    def __init__(self) -> None:
        self.current: dict = {}
        self.previous: dict = {}

    def rotate(self) -> None:
        """A new view: what the last one did not use goes."""
        self.previous, self.current = self.current, {}

    def get(self, key: tuple, make) -> tuple:
        value = self.current.get(key)
        if value is None:
            value = self.previous.pop(key, None)
            if value is None:
                value = tuple(make())
            self.current[key] = value
        return value


def _once(key: tuple, make) -> tuple:
    return tuple(make())


def build_node(view: NetworkView, node_name: str, memo: Memo | None = None) -> NodeFlows:
    """Every flow node ``node_name``'s bridge should hold, in a stable order, and the flows refused.

    Raises:
        KeyError: no such node in the view.
    """
    get = memo.get if memo is not None else _once
    node = view.node(node_name)
    parts = [get(("init", node), lambda: pod_connectivity.init_flows(node) + overlay.init_flows(node)
                 + service.init_flows(node) + policy.init_flows(node))]
    local = sorted((p for p in view.pods if p.node == node.name), key=lambda p: p.ofport)
    parts += [get(("pod", node, pod), lambda pod=pod: pod_connectivity.flows_for_pod(node, pod)) for pod in local]
    parts += [get(("peer", node, peer), lambda peer=peer: overlay.flows_for_peer(node, peer))
              for peer in view.nodes if peer.name != node.name]
    parts += [get(("svc", node, svc), lambda svc=svc: service.flows_for_service(node, svc)) for svc in view.services]
    parts += [get(("ep", node.zone, svc.id, svc.protocol, ep.ip, ep.port),
                  lambda svc=svc, ep=ep: service.endpoint_flows_for(node, svc, ep))
              for svc, ep in service.distinct_endpoints(view)]
    parts.append(get(("policy", node, view.policies, tuple(p.ip for p in local)),
                     lambda: policy.flows_for_node(view, node)))
    out = NodeFlows()
    chosen: dict[tuple, Flow] = {}
    for part in parts:
        for flow in part:
            key = flow.key
            old = chosen.get(key)
            if old is None:
                chosen[key] = flow
                out.flows.append(flow)
            elif (old.actions, old.goto) != (flow.actions, flow.goto):
                out.problems.append((flow.cookie, f"flow {flow.to_ofctl()} conflicts with one of "
                                                  f"{describe_cookie(view, old.cookie)}; not installed"))
    return out


def flows_for_node(view: NetworkView, node_name: str) -> list[Flow]:
    """The flows of ``build_node`` (refused ones left out)."""
    return build_node(view, node_name).flows


def groups_for_node(view: NetworkView, node_name: str, memo: Memo | None = None) -> list[Group]:
    """Every OpenFlow group the node's bridge should hold (Service load balancing)."""
    get = memo.get if memo is not None else _once
    node = view.node(node_name)
    return [g for svc in view.services if svc.cluster_ip
            for g in service.groups_for_service(node, svc, get(("groups", svc), lambda svc=svc: service.cluster_groups(svc)))]


def describe_cookie(view: NetworkView, value: int) -> str:
    """``0x200000000000002a`` -> ``pod default/web-x`` for people reading a dump."""
    category, object_id = split(value)
    if category == Category.POD:
        pod = next((p for p in view.pods if p.id == object_id), None)
        return f"pod {pod.namespace}/{pod.name}" if pod else f"pod #{object_id} (gone)"
    if category in (Category.NODE, Category.OVERLAY):
        node = next((n for n in view.nodes if n.index == object_id), None)
        what = "node" if category == Category.NODE else "overlay to"
        return f"{what} {node.name if node else object_id}"
    if category == Category.SERVICE:
        svc = next((s for s in view.services if s.id == object_id), None)
        return f"service {svc.label}" if svc else f"service #{object_id} (gone)"
    if category == Category.POLICY:
        rule = next((r for r in view.policies.rules if r.id == object_id), None)
        return f"networkpolicy {rule.owner}" if rule else "networkpolicy isolation"
    return category.name.lower()
