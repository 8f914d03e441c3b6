"""Services, kube-proxy style, in OpenFlow (Antrea's proxy): conntrack, select groups, DNAT.

    ConntrackZone     ip -> ct(zone, nat): replies of load-balanced connections are un-DNATed
    ConntrackState    invalid -> drop; established/related -> L3Forwarding; new -> SessionAffinity
    SessionAffinity   learned flows (client IP, Service IP, port) -> the endpoint chosen before
    ServiceLB         (proto, ClusterIP | NodePort VIP | LB IP, port) -> group (one bucket per
                      ready endpoint); no endpoints -> packet to the controller, which answers
                      with a TCP RST or ICMP port unreachable, as kube-proxy's REJECT rule does
    EndpointDNAT      (reg3=endpoint IP, reg4=port) -> ct(commit, nat(dst=IP:port)) -> L3Forwarding

The endpoint sees the client's own IP: no SNAT between pods. NodePort and LoadBalancer traffic
reaches OVS through the node's gateway after the node's own rules DNAT it to the NodePort
virtual IP (``emulator.pipeline.hostrules``) and, for externalTrafficPolicy: Cluster, SNAT it to
the gateway so replies return through this node.
"""
from __future__ import annotations

import functools
import ipaddress

from emulator.pipeline import cookie, fields
from emulator.pipeline.cookie import Category
from emulator.pipeline.features.pod_connectivity import P_HIGH, P_MISS, arp_reply
from emulator.pipeline.flow import (ETH_IP, IP_PROTO, Ct, Flow, Group, GroupAction, LearnAffinity,
                                    LoadMark, LoadReg, OutputInPort, Resubmit, SetField, ToController, cidr_match,
                                    ct_state)
from emulator.model.netview import GROUP_CHUNK, EndpointView, NetworkView, NodeView, ServicePortView

NODEPORT_VIP = "169.254.0.252"  # node rules DNAT NodePort/LoadBalancer traffic to this address
SERVICE_GW_VIP = "169.254.0.253"  # the node routes the service subnet via this (onlink)
HAIRPIN_VIP = "169.254.0.254"  # a pod reaching itself through a Service sees this source
VIRTUAL_MAC = "aa:bb:cc:dd:ee:ff"


def _l4(protocol: str) -> str:
    return {"TCP": "tcp_dst", "UDP": "udp_dst", "SCTP": "sctp_dst"}[protocol]


def init_flows(node: NodeView) -> list[Flow]:
    own = cookie.make(Category.NODE, node.index)
    miss = cookie.make(Category.PIPELINE, 0)
    return [
        Flow("ConntrackZone", P_HIGH, (("eth_type", ETH_IP),),
             (Ct(node.zone, "ConntrackState", nat="nat"),), None, miss, "through conntrack"),
        Flow("ConntrackZone", P_HIGH + 10, (("eth_type", ETH_IP), ("ipv4_dst", HAIRPIN_VIP)),
             (LoadMark(fields.HAIRPIN_MARK), Ct(node.snat_zone, "ConntrackZone", nat="nat")), None,
             miss, "hairpin reply: undo the SNAT, then the DNAT"),
        Flow("ConntrackZone", P_MISS, (), (), "L3Forwarding", miss),
        Flow("ConntrackState", P_HIGH + 10, (("eth_type", ETH_IP), ct_state("-new", "+est", "-rpl", "+trk"),
                                             ("ct_mark", fields.CT_MARK_HAIRPIN)),
             (LoadMark(fields.HAIRPIN_MARK),), "HairpinSNAT", miss, "hairpin connection, forward direction"),
        Flow("ConntrackState", P_HIGH + 20, (("eth_type", ETH_IP), ct_state("+inv", "+trk")), (), None, miss,
             "invalid in conntrack: drop (as Antrea and kube-proxy do), never past policy"),
        Flow("ConntrackState", P_HIGH, (("eth_type", ETH_IP), ct_state("-new", "+trk")),
             (LoadMark(fields.ESTABLISHED_MARK),), "L3Forwarding", miss,
             "established, related, reply, invalid: no load balancing, no policy"),
        Flow("HairpinSNAT", P_HIGH, (("eth_type", ETH_IP),),
             (Ct(node.snat_zone, "L3Forwarding", commit=True, nat="src", nat_ip=HAIRPIN_VIP),), None,
             miss, f"SNAT to {HAIRPIN_VIP}"),
        Flow("HairpinSNAT", P_MISS, (), (), None, miss, "table-miss: drop"),
        Flow("Output", P_HIGH + 10, (fields.HAIRPIN_MARK.match,), (OutputInPort(),), None, miss,
             "hairpin: back out of the port it came in by"),
        Flow("L3Forwarding", P_HIGH + 5, (("eth_type", ETH_IP), fields.marks(fields.FROM_GATEWAY, fields.HAIRPIN_MARK)),
             (SetField("eth_src", VIRTUAL_MAC), SetField("eth_dst", node.gateway_mac)), "L2ForwardingCalc", own,
             "gateway hairpin, either way: back to the node"),
        Flow("ConntrackState", P_MISS, (), (), "ServiceLB", miss),
        Flow("ServiceLB", P_MISS, (), (), "EgressRule", miss),
        Flow("AffinityGate", P_HIGH + 10, (fields.AFFINITY_HIT.match,), (Resubmit("EndpointDNAT"),), None,
             miss, "this client's remembered endpoint"),
        Flow("EndpointDNAT", P_MISS, (), (), None, miss, "table-miss: drop"),
        Flow("AffinityGate", P_MISS, (), (), None, miss, "table-miss: drop"),
        Flow("AffinityLearn", P_MISS, (), (), None, miss, "table-miss: drop"),
        arp_reply("ARPResponder", SERVICE_GW_VIP, VIRTUAL_MAC, own),
        arp_reply("ARPResponder", NODEPORT_VIP, VIRTUAL_MAC, own),
    ]


def group_ids(svc: ServicePortView) -> tuple[int, int]:
    """(all endpoints, node-local endpoints) group ids for a Service port, as allocated."""
    return svc.groups


@functools.lru_cache(maxsize=65536)
def _ip_int(ip: str) -> int:
    """Parsing costs 7 µs; a 1,000-endpoint Service's buckets parse every endpoint."""
    return int(ipaddress.IPv4Address(ip))


def _buckets(svc: ServicePortView, endpoints) -> tuple:
    out = []
    for ep in endpoints:
        bucket = [LoadReg(fields.ENDPOINT_IP, _ip_int(ep.ip)),
                  LoadReg(fields.ENDPOINT_PORT, ep.port),
                  Resubmit("AffinityLearn" if svc.affinity_timeout else "EndpointDNAT")]
        out.append(tuple(bucket))
    return tuple(out)


def _group(group_id: int, svc: ServicePortView, endpoints, owner: int, spare: list[int]) -> list[Group]:
    """One select group, or, past GROUP_CHUNK endpoints, a group choosing among chained groups
    with weights equal to their sizes (every endpoint stays equally likely)."""
    endpoints = list(endpoints)
    if len(endpoints) <= GROUP_CHUNK:
        return [Group(group_id, _buckets(svc, endpoints), owner)]
    chunks = [endpoints[i:i + GROUP_CHUNK] for i in range(0, len(endpoints), GROUP_CHUNK)]
    if len(chunks) > len(spare):  # the manager allocates enough; a view that lacks them gets no group
        return []
    ids = [spare.pop(0) for _ in chunks]
    chained = [Group(gid, _buckets(svc, chunk), owner) for gid, chunk in zip(ids, chunks)]
    # the chained groups first: a switch refuses a bucket pointing at a group it does not have
    return chained + [Group(group_id, tuple((GroupAction(gid),) for gid in ids), owner, tuple(len(c) for c in chunks))]


def cluster_groups(svc: ServicePortView) -> tuple[Group, ...]:
    """The groups choosing among all the Service port's endpoints: the same on every node, so
    they are computed once per view (``build.Memo``), not once per node."""
    every, _ = group_ids(svc)
    if not svc.endpoints:
        return ()
    return tuple(_group(every, svc, svc.endpoints, cookie.make(Category.SERVICE, svc.id), list(svc.subgroups)))


def groups_for_service(node: NodeView, svc: ServicePortView, shared: tuple[Group, ...] | None = None) -> list[Group]:
    """The node's groups for a Service port: ``cluster_groups`` (given, or computed here) and,
    for a node-local traffic policy, the group of the node's own endpoints."""
    owner = cookie.make(Category.SERVICE, svc.id)
    local = local_endpoints(node, svc)
    _, only_local = group_ids(svc)
    out = list(cluster_groups(svc) if shared is None else shared)
    spare = list(svc.subgroups)[max(0, len(out) - 1):]  # the chained ids the shared groups took
    if local and (svc.external_local or svc.internal_local):
        out += _group(only_local, svc, local, owner, spare)
    return out


def local_endpoints(node: NodeView, svc: ServicePortView) -> list[EndpointView]:
    """The node's ready endpoints, else its serving-terminating ones (kube-proxy's fallback)."""
    return [e for e in svc.endpoints if e.node == node.name] or [e for e in svc.terminating if e.node == node.name]


def flows_for_service(node: NodeView, svc: ServicePortView) -> list[Flow]:
    if not svc.cluster_ip:
        return []
    owner = cookie.make(Category.SERVICE, svc.id)
    proto = (("eth_type", ETH_IP), ("ip_proto", IP_PROTO[svc.protocol]))
    every, only_local = group_ids(svc)
    has_local = bool(local_endpoints(node, svc))

    def lb(dst: str, port: int, local: bool, extra: tuple = ()) -> list[Flow]:
        match = proto + (("ipv4_dst", dst), (_l4(svc.protocol), port)) + extra
        if local:
            action = (GroupAction(only_local),) if has_local else ()
            note = f"{svc.label} (local endpoints only)"
        elif svc.endpoints:
            action, note = (GroupAction(every),), svc.label
        else:
            action, note = (ToController(),), f"{svc.label} has no endpoints: reject"
        if not svc.affinity_timeout or not action or isinstance(action[0], ToController):
            return [Flow("ServiceLB", P_HIGH, match, action, None, owner, note)]
        # ClientIP affinity: look up a remembered endpoint first; the gate then either uses it or
        # asks the group, whose bucket goes through AffinityLearn to remember the choice.
        return [Flow("ServiceLB", P_HIGH, match, (Resubmit("SessionAffinity"), Resubmit("AffinityGate")),
                     None, owner, f"{note} (sessionAffinity: ClientIP)"),
                Flow("AffinityGate", P_HIGH, match, action, None, owner, note),
                Flow("AffinityLearn", P_HIGH, match,
                     (LearnAffinity("SessionAffinity", svc.protocol, svc.affinity_timeout, owner),
                      Resubmit("EndpointDNAT")), None, owner, f"remember the endpoint for {svc.label}")]

    flows = lb(svc.cluster_ip, svc.port, svc.internal_local)
    if svc.node_port:
        flows += lb(NODEPORT_VIP, svc.node_port, svc.external_local)
    if svc.node_port and svc.external_local:
        # kube-proxy's KUBE-EXT "pod traffic for external destinations": a pod of this node calling
        # the node's NodePort, the LoadBalancer address or an external IP of a Local Service goes
        # to any endpoint, keeping its own address (balanced here, before the gateway, so the
        # reply is un-DNATed here too)
        for dst, port in svc.external_destinations(node.ip):
            if dst == svc.lb_ip and svc.source_ranges:  # only those sources; the rest meets the node's firewall
                for cidr in svc.source_ranges:
                    flows += lb(dst, port, False, (fields.FROM_POD.match, ("ipv4_src", cidr_match(cidr))))
            else:
                flows += lb(dst, port, False, (fields.FROM_POD.match,))
    return flows


def distinct_endpoints(view: NetworkView) -> list[tuple[ServicePortView, EndpointView]]:
    """Each distinct endpoint (IP, port, protocol) once, with the first Service port that has it
    (its DNAT flows are shared by every Service that selects it)."""
    seen: dict[tuple, tuple[ServicePortView, EndpointView]] = {}
    for svc in view.services:
        if not svc.cluster_ip:
            continue
        for ep in svc.endpoints + svc.terminating:
            seen.setdefault((ep.ip, ep.port, svc.protocol), (svc, ep))
    return list(seen.values())


def endpoint_flows_for(node: NodeView, svc: ServicePortView, ep: EndpointView) -> list[Flow]:
    """The DNAT flows of one endpoint: to it, and to it from itself (hairpin: DNAT, then SNAT).
    An endpoint outside the pod network (a hostNetwork pod's node address) reached from the
    node's gateway (NodePort, LoadBalancer, the node itself) is hairpinned too: the packet goes
    back out of the gateway, and without the SNAT the node would answer its own gateway address
    directly, past the un-DNAT (Antrea's gateway hairpin does the same)."""
    match = (("eth_type", ETH_IP), ("ip_proto", IP_PROTO[svc.protocol]),
             ("reg3", int(ipaddress.IPv4Address(ep.ip))), ("reg4", (ep.port, 0xFFFF)))
    owner = cookie.make(Category.SERVICE, svc.id)
    hairpin = (LoadMark(fields.HAIRPIN_MARK),
               Ct(node.zone, "HairpinSNAT", commit=True, nat="dst", nat_ip=ep.ip, nat_port=ep.port,
                  mark=fields.CT_MARK_HAIRPIN))
    gateway = [] if ep.pod_network else [
        Flow("EndpointDNAT", P_HIGH + 5, match + (fields.FROM_GATEWAY.match,), hairpin, None, owner,
             f"from the gateway to {ep.ip} outside the pod network: DNAT, then SNAT")]
    return gateway + [
        Flow("EndpointDNAT", P_HIGH, match,
             (Ct(node.zone, "EgressRule", commit=True, nat="dst", nat_ip=ep.ip, nat_port=ep.port),), None,
             owner, f"DNAT to {ep.ip}:{ep.port}/{svc.protocol}"),
        Flow("EndpointDNAT", P_HIGH + 10, match[:2] + (("ipv4_src", ep.ip),) + match[2:],
             hairpin, None, owner, f"{ep.ip} reaching itself: DNAT, then SNAT")]
