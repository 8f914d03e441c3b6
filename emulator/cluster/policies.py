"""NetworkPolicy compiled to address sets: what the data plane needs, nothing else (pure).

Each rule becomes ``RuleView``s: the applied-to pods' IPs (with their nodes), the peers as
CIDRs (pod IPs as /32, ipBlocks minus their exceptions, or "any"), and numeric ports. A named
port is resolved per pod (per applied-to pod for ingress, per peer pod for egress), so a rule
using one can become several views. The sets of isolated pods per direction come alongside.
Each view's id (its conjunction id and cookie) comes from the cluster's rule allocator, keyed
by (policy uid, direction, rule index, resolved pod uid): stable while the rule exists, reused
after, and never shared.
"""
from __future__ import annotations

import ipaddress

from emulator.cluster.store import ClusterState
from emulator.model.netpol import NetworkPolicy, Peer, PolicyPort
from emulator.model.netview import PolicyView, RuleView, Selection

ANY = ("0.0.0.0/0",)


def _pods(state: ClusterState) -> list:
    """Pods with an address, terminating ones included: a pod being stopped is still isolated
    by its policies, and still a peer, until its address is released. ``hostNetwork`` pods are
    left out, as Antrea and Calico leave them: NetworkPolicy does not govern the node's own
    traffic (upstream leaves it undefined), and a node address is no pod's to admit."""
    return [r for r in state.pods() if r.status.ip and r.status.node and not r.obj.spec.host_network]


def _ns_labels(state: ClusterState) -> dict[str, dict[str, str]]:
    return {r.obj.meta.name: r.obj.labels() for r in state.list("Namespace")}


def _peer_pods(state: ClusterState, policy: NetworkPolicy, peer: Peer, pods: list) -> list:
    labels = _ns_labels(state)
    out = []
    for rec in pods:
        ns = rec.obj.meta.namespace
        if peer.namespace_selector is not None:
            if not peer.namespace_selector.matches(labels.get(ns, {})):
                continue
        elif ns != policy.meta.namespace:
            continue
        if peer.pod_selector is not None and not peer.pod_selector.matches(rec.obj.meta.labels):
            continue
        out.append(rec)
    return out


def _cidrs(block) -> list[str]:
    nets = [ipaddress.IPv4Network(block.cidr)]
    for ex in block.excepts:
        exnet = ipaddress.IPv4Network(ex)
        nets = [piece for n in nets for piece in ((n,) if not exnet.subnet_of(n) and not n.subnet_of(exnet)
                                                  else (() if n.subnet_of(exnet) else tuple(n.address_exclude(exnet))))]
    return sorted(str(n) for n in nets)


def _port(p: PolicyPort, rec) -> tuple[str, int | None, int | None] | None:
    if p.port is None or isinstance(p.port, int):
        return (p.protocol, p.port, p.end_port)
    for c in rec.obj.spec.containers:
        for cp in c.ports:
            if cp.name == p.port and cp.protocol == p.protocol:
                return (p.protocol, cp.container_port, None)
    return None


def isolating(state: ClusterState, ip: str, direction: str) -> list[str]:
    """``namespace/name`` of the NetworkPolicies that isolate the pod at ``ip`` in ``direction``
    (Ingress, Egress): what a trace names when the isolation flow drops a packet."""
    pod = next((p for p in _pods(state) if p.status.ip == ip), None)
    if pod is None:
        return []
    return sorted(f"{rec.obj.meta.namespace}/{rec.obj.meta.name}" for rec in state.list("NetworkPolicy")
                  if rec.obj.meta.namespace == pod.obj.meta.namespace and direction in rec.obj.policy_types
                  and rec.obj.pod_selector.matches(pod.obj.meta.labels))


def compile_policies(state: ClusterState) -> PolicyView:
    pods = _pods(state)
    rules: list[RuleView] = []
    ids = state.ids.rules
    isolated: dict[str, set[str]] = {"Ingress": set(), "Egress": set()}
    selections: list[Selection] = []
    for rec in sorted(state.list("NetworkPolicy"), key=lambda r: r.id):
        pol: NetworkPolicy = rec.obj
        applied = [p for p in pods if p.obj.meta.namespace == pol.meta.namespace and pol.pod_selector.matches(p.obj.meta.labels)]
        for direction in pol.policy_types:
            isolated[direction] |= {p.status.ip for p in applied}
            selections.append(Selection(pol.key, direction, tuple(sorted(p.status.ip for p in applied))))
            for index, rule in enumerate(pol.ingress if direction == "Ingress" else pol.egress):
                peer_ips: set[str] = set()
                peer_pods = []
                if not rule.peers:
                    peer_ips = set(ANY)
                for peer in rule.peers:
                    if peer.ip_block:
                        peer_ips |= set(_cidrs(peer.ip_block))
                    else:
                        found = _peer_pods(state, pol, peer, pods)
                        peer_pods += found
                        peer_ips |= {f"{p.status.ip}/32" for p in found}
                named = any(isinstance(p.port, str) for p in rule.ports)
                base = (rec.uid, direction, index)
                owner = f"{pol.key} {direction.lower()}[{index}]"
                if not named:
                    ports = tuple(sorted({(p.protocol, p.port, p.end_port) for p in rule.ports}, key=str))
                    rules.append(RuleView(ids.get(base + ("",)), owner, direction,
                                          tuple((p.status.ip, p.status.node) for p in applied),
                                          tuple(sorted(peer_ips)), ports, pol.key))
                    continue
                # named ports: resolve against each destination pod. Egress: the peer pods; with
                # no `to`, every pod (a name only a pod's container can give); with ipBlocks, the
                # pods inside them. A destination that is not a pod has no named ports.
                if direction == "Ingress":
                    targets = applied
                elif not rule.peers:
                    targets = pods
                else:
                    nets = [ipaddress.IPv4Network(c) for c in peer_ips]
                    inside = [p for p in pods if any(ipaddress.IPv4Address(p.status.ip) in n for n in nets)]
                    targets = list({p.uid: p for p in peer_pods + inside}.values())
                for target in targets:
                    ports = tuple(sorted({x for x in (_port(p, target) for p in rule.ports) if x}, key=str))
                    if not ports:
                        continue
                    rule_id = ids.get(base + (target.uid,))
                    if direction == "Ingress":
                        rules.append(RuleView(rule_id, owner, direction, ((target.status.ip, target.status.node),),
                                              tuple(sorted(peer_ips)), ports, pol.key))
                    else:
                        rules.append(RuleView(rule_id, owner, direction,
                                              tuple((p.status.ip, p.status.node) for p in applied),
                                              (f"{target.status.ip}/32",), ports, pol.key))
    ids.retain(ids.by_id[r.id] for r in rules)
    return PolicyView(tuple(rules), tuple(sorted(isolated["Ingress"])), tuple(sorted(isolated["Egress"])),
                      tuple(selections))
