"""Where a traced packet enters the OpenFlow data plane, and what it looks like there.

A pod's packet enters its switch at the pod's port as the pod's kernel sends it (its MAC and IP;
to the gateway MAC unless the destination is a pod of the same node, which it reaches directly).
A node's own packet enters at the gateway port as the node's routes make it (``route``: the
answer of ``ip route get`` in the node's namespace, read by the runtime). Traffic from outside to
a NodePort goes through the node's nat rules first (``pipeline.hostrules``): DNAT to the NodePort
virtual address, SNAT to the gateway address unless externalTrafficPolicy is Local.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from emulator.model import naming
from emulator.model.netview import NetworkView, NodeView, PodView, ServicePortView
from emulator.pipeline.features.service import NODEPORT_VIP, SERVICE_GW_VIP, VIRTUAL_MAC
from emulator.trace.path import Hop

EPHEMERAL_PORT = 40000  # the client port of a traced connection (--sport)
PROTOCOLS = ("tcp", "udp", "icmp")


@dataclass
class Packet:
    node: str  # whose switch it enters
    fields: dict[str, str]
    hops: list[Hop] = field(default_factory=list)  # what happened before the switch (DNS, node rules)
    wire: tuple[str, int | None] | None = None  # where the source sends it, if not the destination (a NodePort)


def l4(protocol: str, src_port: int, port: int | None) -> dict[str, str]:
    if protocol == "icmp":
        return {"icmp": "", "icmp_type": "8", "icmp_code": "0"}
    return {protocol: "", "tp_src": str(src_port), "tp_dst": str(port or 0)}


def from_pod(view: NetworkView, pod: PodView, dst_ip: str, protocol: str, port: int | None,
             src_port: int = EPHEMERAL_PORT) -> Packet:
    node = view.node(pod.node)
    local = next((p for p in view.pods if p.node == pod.node and p.ip == dst_ip), None)
    dl_dst = local.mac if local is not None and local is not pod else node.gateway_mac
    fields = {**_proto_first(l4(protocol, src_port, port)), "in_port": str(pod.ofport), "dl_src": pod.mac,
              "dl_dst": dl_dst, "nw_src": pod.ip, "nw_dst": dst_ip, "nw_ttl": "64", **_ports(l4(protocol, src_port, port))}
    hop = Hop("host", pod.node, f"pod {pod.namespace}/{pod.name} ({pod.ip}) sends to {dst_ip}"
              f"{':' + str(port) if port and protocol != 'icmp' else ''}/{protocol} from its eth0 "
              f"(to {'the pod directly' if dl_dst != node.gateway_mac else 'its gateway ' + node.gateway_ip})")
    return Packet(pod.node, fields, [hop])


def from_node(view: NetworkView, node: NodeView, route: dict[str, str], dst_ip: str, protocol: str,
              port: int | None, src_port: int = EPHEMERAL_PORT, hops: list[Hop] | None = None) -> Packet | None:
    """The node's packet at its gateway port, or None when its route does not use the gateway
    (``route``: dev, via, src of ``ip route get``)."""
    hops = hops if hops is not None else []
    hops.append(Hop("host", node.name, f"node {node.name}: ip route get {dst_ip} -> "
                    + " ".join(f"{k} {v}" for k, v in route.items() if v)))
    if route.get("dev") != naming.NODE_GATEWAY_IF:
        return None
    via = route.get("via", "")
    if via in (SERVICE_GW_VIP, NODEPORT_VIP):
        dl_dst = VIRTUAL_MAC
    elif via:
        dl_dst = naming.GLOBAL_VIRTUAL_MAC
    else:
        local = next((p for p in view.pods if p.node == node.name and p.ip == dst_ip), None)
        dl_dst = local.mac if local else node.gateway_mac
    fields = {**_proto_first(l4(protocol, src_port, port)), "in_port": str(naming.GATEWAY_OFPORT),
              "dl_src": node.gateway_mac, "dl_dst": dl_dst, "nw_src": route.get("src") or node.gateway_ip,
              "nw_dst": dst_ip, "nw_ttl": "64", **_ports(l4(protocol, src_port, port))}
    return Packet(node.name, fields, hops)


def node_port_entry(node: NodeView, svc: ServicePortView, client_ip: str, text: str) -> tuple[Hop, str]:
    """The node's nat rules for a NodePort reached from outside: the hop and the source address
    the packet has when it reaches the switch."""
    source = client_ip if svc.external_local else node.gateway_ip
    why = ("externalTrafficPolicy Local: the client address is kept" if svc.external_local
           else f"SNAT to the gateway address {node.gateway_ip} (externalTrafficPolicy Cluster)")
    return Hop("host", node.name, f"{text}: node {node.name}'s nat rules DNAT {node.ip}:{svc.node_port} to "
               f"{NODEPORT_VIP}:{svc.node_port} ({svc.label}), {why}; routed to its gateway"), source


def gateway_packet(node: NodeView, src_ip: str, dst_ip: str, protocol: str, port: int | None,
                   src_port: int = EPHEMERAL_PORT) -> dict[str, str]:
    """A packet the node's kernel hands to its gateway for a virtual address (NodePort)."""
    return {**_proto_first(l4(protocol, src_port, port)), "in_port": str(naming.GATEWAY_OFPORT),
            "dl_src": node.gateway_mac, "dl_dst": VIRTUAL_MAC, "nw_src": src_ip, "nw_dst": dst_ip,
            "nw_ttl": "64", **_ports(l4(protocol, src_port, port))}


def in_pod_network(view: NetworkView, ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr in ipaddress.ip_network(n.pod_cidr) for n in view.nodes)


def _proto_first(fields: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if v == ""}


def _ports(fields: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if v != ""}
