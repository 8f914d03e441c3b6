"""Pods and the node gateway on one switch: classification, spoof guard, ARP, local delivery.

ARP is answered by flows (no flooding, no learning): a pod asking for its gateway or a
same-node pod, and the node asking for a local pod, all get the answer from ARPResponder. The
reply is built in place: swap the Ethernet and ARP addresses, set the op to 2, send it back.
"""
from __future__ import annotations

from emulator.model import naming
from emulator.pipeline import cookie, fields
from emulator.pipeline.cookie import Category
from emulator.pipeline.flow import (ETH_ARP, ETH_IP, Flow, LoadMark, LoadReg, Move, OutputInPort,
                                    OutputReg, SetField)
from emulator.model.netview import NodeView, PodView

P_HIGH, P_NORMAL, P_LOW, P_MISS = 200, 190, 180, 0
GW = naming.GATEWAY_OFPORT


def arp_reply(table: str, ip: str, mac: str, owner: int) -> Flow:
    """A flow that answers ``who-has ip`` with ``mac``."""
    return Flow(table, P_HIGH, (("eth_type", ETH_ARP), ("arp_op", 1), ("arp_tpa", ip)), (
        Move("eth_src", "eth_dst", 48), SetField("eth_src", mac), SetField("arp_op", 2),
        Move("arp_sha", "arp_tha", 48), SetField("arp_sha", mac), Move("arp_spa", "arp_tpa", 32),
        SetField("arp_spa", ip), OutputInPort()), cookie=owner, note=f"ARP {ip} is-at {mac}")


def init_flows(node: NodeView) -> list[Flow]:
    own = cookie.make(Category.NODE, node.index)
    miss = cookie.make(Category.PIPELINE, 0)
    gw_port = (("in_port", GW),)
    return [
        Flow("Classifier", P_HIGH, gw_port, (LoadMark(fields.FROM_GATEWAY),), "SpoofGuard", own,
             "from the node's gateway"),
        Flow("SpoofGuard", P_HIGH, gw_port + (("eth_type", ETH_IP),), (), "ConntrackZone", own),
        Flow("SpoofGuard", P_HIGH, gw_port + (("eth_type", ETH_ARP),), (), "ARPResponder", own),
        arp_reply("ARPResponder", node.gateway_ip, node.gateway_mac, own),
        Flow("L3Forwarding", P_HIGH, (("eth_type", ETH_IP), ("ipv4_dst", node.gateway_ip)),
             (SetField("eth_dst", node.gateway_mac),), "L2ForwardingCalc", own),
        Flow("L3Forwarding", P_LOW, (("eth_type", ETH_IP), fields.FROM_POD.match),
             (SetField("eth_dst", node.gateway_mac),), "L2ForwardingCalc", own,
             "anything else a pod sends goes to its node"),
        Flow("L2ForwardingCalc", P_HIGH, (("eth_dst", node.gateway_mac),),
             (LoadReg(fields.TARGET_OFPORT, GW),), "IngressRule", own),
        Flow("Output", P_HIGH, (), (OutputReg(fields.TARGET_OFPORT),), None, miss),
    ] + [Flow(t, P_MISS, (), (), None, miss, "table-miss: drop")
         for t in ("Classifier", "SpoofGuard", "ARPResponder", "L3Forwarding", "L2ForwardingCalc")]


def flows_for_pod(node: NodeView, pod: PodView) -> list[Flow]:
    own = cookie.make(Category.POD, pod.id)
    port = (("in_port", pod.ofport),)
    return [
        Flow("Classifier", P_NORMAL, port, (LoadMark(fields.FROM_POD),), "SpoofGuard", own,
             f"from pod {pod.namespace}/{pod.name}"),
        Flow("SpoofGuard", P_HIGH, port + (("eth_type", ETH_IP), ("eth_src", pod.mac),
                                           ("ipv4_src", pod.ip)), (), "ConntrackZone", own),
        Flow("SpoofGuard", P_HIGH, port + (("eth_type", ETH_ARP), ("arp_spa", pod.ip),
                                           ("arp_sha", pod.mac)), (), "ARPResponder", own),
        arp_reply("ARPResponder", pod.ip, pod.mac, own),
        Flow("L3Forwarding", P_HIGH, (("eth_type", ETH_IP), ("ipv4_dst", pod.ip)),
             (SetField("eth_src", node.gateway_mac), SetField("eth_dst", pod.mac)),
             "L2ForwardingCalc", own, f"to pod {pod.namespace}/{pod.name}"),
        Flow("L2ForwardingCalc", P_HIGH, (("eth_dst", pod.mac),),
             (LoadReg(fields.TARGET_OFPORT, pod.ofport),), "IngressRule", own),
    ]
