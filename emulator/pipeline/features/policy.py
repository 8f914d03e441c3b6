"""NetworkPolicy in OpenFlow, with conjunctive matches (as Antrea does).

    EgressRule       after Service DNAT, before routing: from a local pod an egress policy
                     selects -> allowed if some rule's clauses all match: (source pod) x (peer
                     CIDR) x (port); else dropped if the pod is egress-isolated
    IngressRule      before output: the same for packets to a local pod (peer = source)
    ConntrackCommit  every new connection that got this far is committed, so its replies
                     (and later packets) pass as established on this node; a Service
                     connection (+dnat) was committed by EndpointDNAT already and is not
                     sent through conntrack a third time (Antrea's ConntrackCommit skips
                     Service connections by their ct_mark)
Established connections are marked in ConntrackState and skip both rule tables, so replies
always pass and changed policies never cut connections they still allow. Packets from the
node's own gateway address (kubelet probes) are admitted, as CNI plugins do. A rule whose peers
and ports are "any" needs no conjunction: one flow per applied pod, at ``P_ALLOW_ALL``, above
the conjunction clauses (a flow cannot both allow and be a clause of another rule's
conjunction; every allow is alike, so the higher priority changes nothing else).
"""
from __future__ import annotations

from collections import defaultdict

from emulator.pipeline import cookie, fields
from emulator.pipeline.cookie import Category
from emulator.pipeline.flow import ETH_IP, IP_PROTO, Conjunction, Ct, Flow, cidr_match, ct_state
from emulator.model.netview import NetworkView, NodeView

P_EST, P_GATEWAY, P_ALLOW_ALL, P_RULE, P_ISOLATED, P_MISS = 250, 240, 210, 200, 100, 0
L4 = {"TCP": "tcp_dst", "UDP": "udp_dst", "SCTP": "sctp_dst"}


def port_masks(start: int, end: int) -> list[tuple[int, int]]:
    """A port range as (value, mask) pairs, the fewest that cover it exactly."""
    out = []
    while start <= end:
        size = start & -start if start else 1 << 16
        while size > end - start + 1:
            size >>= 1
        out.append((start, 0xFFFF & ~(size - 1)))
        start += size
    return out


def _ip(field: str, cidr: str) -> tuple:
    ip, mask = cidr_match(cidr)
    return (field, ip) if mask == "255.255.255.255" else (field, (ip, mask))


def _port_matches(ports) -> list[tuple]:
    out = []
    for proto, port, end in ports:
        base = (("ip_proto", IP_PROTO[proto]),)
        if port is None:
            out.append(base)
        elif end is None:
            out.append(base + ((L4[proto], port),))
        else:
            out += [base + ((L4[proto], (v, m)),) for v, m in port_masks(port, end)]
    return out


def init_flows(node: NodeView) -> list[Flow]:
    miss = cookie.make(Category.PIPELINE, 0)
    est = (fields.ESTABLISHED_MARK.match,)
    return [
        Flow("EgressRule", P_MISS, (), (), "L3Forwarding", miss),
        Flow("IngressRule", P_EST, est, (), "Output", miss, "established: policy already allowed it"),
        Flow("IngressRule", P_GATEWAY, (("eth_type", ETH_IP), ("ipv4_src", node.gateway_ip)), (),
             "ConntrackCommit", miss, "from this node (kubelet probes)"),
        Flow("IngressRule", P_MISS, (), (), "ConntrackCommit", miss),
        Flow("ConntrackCommit", P_RULE + 10, (("eth_type", ETH_IP), ct_state("+new", "+trk", "+dnat")), (),
             "Output", miss, "a Service connection: EndpointDNAT committed it (Antrea skips it too)"),
        Flow("ConntrackCommit", P_RULE, (("eth_type", ETH_IP), ct_state("+new", "+trk")),
             (Ct(node.zone, "Output", commit=True),), None, miss, "commit new connections"),
        Flow("ConntrackCommit", P_MISS, (), (), "Output", miss),
    ]


def flows_for_node(view: NetworkView, node: NodeView) -> list[Flow]:
    flows: list[Flow] = []
    clauses: dict[tuple, list] = defaultdict(list)  # (table, match) -> conjunction actions
    owners: dict[tuple, int] = {}
    local = {p.ip for p in view.pods if p.node == node.name}
    for rule in view.policies.rules:
        applied = [ip for ip, n in rule.applied if n == node.name]
        if not applied:
            continue
        egress = rule.direction == "Egress"
        table, allow = ("EgressRule", "L3Forwarding") if egress else ("IngressRule", "ConntrackCommit")
        mine, theirs = ("ipv4_src", "ipv4_dst") if egress else ("ipv4_dst", "ipv4_src")
        own = cookie.make(Category.POLICY, rule.id)
        groups = [[(("eth_type", ETH_IP), (mine, ip)) for ip in applied]]
        if rule.peers != ("0.0.0.0/0",):
            groups.append([(("eth_type", ETH_IP), _ip(theirs, c)) for c in rule.peers])
        if rule.ports:
            groups.append([(("eth_type", ETH_IP),) + m for m in _port_matches(rule.ports)])
        if any(not g for g in groups):
            continue  # a rule whose peers match nothing admits nothing
        if len(groups) == 1:
            flows += [Flow(table, P_ALLOW_ALL, m, (), allow, own, rule.owner) for m in groups[0]]
            continue
        for k, group in enumerate(groups, 1):
            for match in group:
                clauses[(table, match)].append(Conjunction(rule.id, k, len(groups)))
                owners.setdefault((table, match), own)
        flows.append(Flow(table, P_RULE, (("conj_id", rule.id),), (), allow, own, f"{rule.owner}: all clauses matched"))
    for (table, match), actions in clauses.items():
        flows.append(Flow(table, P_RULE, match, tuple(actions), None, owners[(table, match)], "policy clause"))
    for direction, ips in (("EgressRule", view.policies.isolated_egress), ("IngressRule", view.policies.isolated_ingress)):
        field = "ipv4_src" if direction == "EgressRule" else "ipv4_dst"
        for ip in ips:
            if ip in local:
                flows.append(Flow(direction, P_ISOLATED, (("eth_type", ETH_IP), (field, ip)), (), None,
                                  cookie.make(Category.POLICY, 0), f"{ip} is isolated: drop what no rule allows"))
    return flows
