"""Answers for connections to a Service without endpoints: what kube-proxy's REJECT rule sends.

TCP gets a RST (ACK of the SYN), UDP an ICMP port unreachable carrying the offending header.
The answer appears to come from the Service address and is sent back out of the port the
packet came in by. Built with os-ken's packet library.
"""
from __future__ import annotations

from os_ken.lib.packet import ethernet, icmp, ipv4, packet, tcp, udp


def build_reject(data: bytes) -> bytes | None:
    """The reply frame for a rejected packet, or None if it needs none (a RST, non-IP)."""
    pkt = packet.Packet(data)
    eth = pkt.get_protocol(ethernet.ethernet)
    ip = pkt.get_protocol(ipv4.ipv4)
    if eth is None or ip is None:
        return None
    reply = packet.Packet()
    reply.add_protocol(ethernet.ethernet(dst=eth.src, src=eth.dst, ethertype=eth.ethertype))
    segment = pkt.get_protocol(tcp.tcp)
    if segment is not None:
        if segment.bits & tcp.TCP_RST:
            return None
        payload = len(pkt.protocols[-1]) if isinstance(pkt.protocols[-1], (bytes, bytearray)) else 0
        ack = (segment.seq + payload + (1 if segment.bits & tcp.TCP_SYN else 0)) & 0xFFFFFFFF
        reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=ip.src, proto=ip.proto, ttl=64))
        reply.add_protocol(tcp.tcp(src_port=segment.dst_port, dst_port=segment.src_port, seq=0, ack=ack,
                                   bits=tcp.TCP_RST | tcp.TCP_ACK, window_size=0))
    elif pkt.get_protocol(udp.udp) is not None:
        offending = data[14:14 + ip.header_length * 4 + 8]
        reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=ip.src, proto=1, ttl=64))
        reply.add_protocol(icmp.icmp(type_=icmp.ICMP_DEST_UNREACH, code=icmp.ICMP_PORT_UNREACH_CODE,
                                     data=icmp.dest_unreach(data=offending)))
    else:
        return None
    reply.serialize()
    return bytes(reply.data)
