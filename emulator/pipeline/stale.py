"""Conntrack entries a Service change leaves stale, as kube-proxy finds them.

A UDP "connection" lives in conntrack for as long as its client keeps sending: when an endpoint
leaves a Service, the entries DNATed to it would keep sending that client's datagrams to an
address nobody answers (the e2e test "should be able to preserve UDP traffic when server pod
cycles"), so kube-proxy deletes them once its rules no longer choose the endpoint. TCP needs
nothing: the client sees its connection fail and opens another.

Open vSwitch's userspace conntrack is flushed by the original (pre-NAT) tuple only, so an entry
is found by the Service address it was sent to, not by the endpoint it was sent on to: every UDP
entry of that Service port is flushed (those to the remaining endpoints too; their next datagram
is balanced again), in each node's zone. kube-proxy removes only the removed endpoint's.
"""
from __future__ import annotations

from emulator.model.netview import NetworkView
from emulator.pipeline.features.service import NODEPORT_VIP


def stale_udp_entries(old: NetworkView | None, new: NetworkView) -> list[tuple[str, int, str]]:
    """(node, conntrack zone, original-tuple match for ``ovs-ofctl ct-flush``) for every UDP
    Service port that lost an endpoint between the two views."""
    if old is None:
        return []
    before = {s.id: s for s in old.services if s.protocol == "UDP" and s.cluster_ip}
    out = []
    for svc in new.services:
        was = before.get(svc.id)
        if was is None:
            continue
        gone = {(e.ip, e.port) for e in was.endpoints + was.terminating} - \
            {(e.ip, e.port) for e in svc.endpoints + svc.terminating}
        if not gone:
            continue
        destinations = [(svc.cluster_ip, svc.port)]
        if svc.node_port:
            destinations.append((NODEPORT_VIP, svc.node_port))
        for node in new.nodes:
            # a pod's own call to its node's external addresses of a Local Service (features.service)
            extra = svc.external_destinations(node.ip) if svc.node_port and svc.external_local else []
            for ip, port in destinations + extra:
                out.append((node.name, node.zone, f"ct_nw_dst={ip},ct_nw_proto=17,ct_tp_dst={port}"))
    return out
