"""The VXLAN overlay between nodes, Flannel/Antrea encap style.

Traffic for another node's pod CIDR is addressed to that node's VTEP MAC and sent to the local
VXLAN device; the kernel VXLAN driver's FDB maps the VTEP MAC to the peer's node IP (set up by
the runtime), so the outer header carries node IPs and the inner one pod IPs. Packets arriving
from the tunnel skip SpoofGuard (the peer switch checked them) and are routed locally.
The node itself reaches remote pods through a route ``<peer CIDR> via <peer gateway> onlink``;
ARPResponder answers for peer gateways with Antrea's global virtual MAC.
"""
from __future__ import annotations

from emulator.model import naming
from emulator.pipeline import cookie, fields
from emulator.pipeline.cookie import Category
from emulator.pipeline.features.pod_connectivity import P_HIGH, arp_reply
from emulator.pipeline.flow import ETH_IP, DecTtl, Flow, LoadMark, LoadReg, SetField, cidr_match
from emulator.model.netview import NodeView

TUN = naming.TUNNEL_OFPORT


def init_flows(node: NodeView) -> list[Flow]:
    own = cookie.make(Category.NODE, node.index)
    return [
        Flow("Classifier", P_HIGH, (("in_port", TUN),), (LoadMark(fields.FROM_TUNNEL),),
             "ConntrackZone", own, "from the VXLAN tunnel"),
    ]


def flows_for_peer(node: NodeView, peer: NodeView) -> list[Flow]:
    own = cookie.make(Category.OVERLAY, peer.index)
    return [
        Flow("L3Forwarding", P_HIGH, (("eth_type", ETH_IP), ("ipv4_dst", cidr_match(peer.pod_cidr))),
             (SetField("eth_src", node.gateway_mac), SetField("eth_dst", peer.vtep_mac), DecTtl()),
             "L2ForwardingCalc", own, f"to node {peer.name}'s pods through the tunnel"),
        Flow("L2ForwardingCalc", P_HIGH, (("eth_dst", peer.vtep_mac),),
             (LoadReg(fields.TARGET_OFPORT, TUN),), "IngressRule", own),
        arp_reply("ARPResponder", peer.gateway_ip, naming.GLOBAL_VIRTUAL_MAC, own),
    ]
