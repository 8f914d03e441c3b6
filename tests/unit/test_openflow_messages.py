"""Every flow and group the pipeline produces becomes a valid OpenFlow 1.3 message (serialized
by os-ken against a stand-in datapath): catches translation errors without a switch."""
from __future__ import annotations

from pathlib import Path

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from emulator.cli.plan import simulate
from emulator.cluster.dataplane import network_view
from emulator.controller import ofp
from emulator.controller.reject import build_reject
from emulator.pipeline.build import flows_for_node, groups_for_node

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


class FakeDatapath:
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser
    id = 1

    def set_xid(self, msg) -> None:
        msg.set_xid(1)


def running_state():
    """The services topology with every pod Running and Ready, so Services have endpoints."""
    from emulator.cluster import controllers
    from emulator.cluster.store import ContainerStatus
    state = simulate(str(TOPOLOGIES / "services.yaml"))
    for rec in state.pods():
        rec.status.phase = "Running"
        rec.status.containers = {c.name: ContainerStatus(c.name, "running", ready=True)
                                 for c in rec.obj.spec.containers}
    controllers.reconcile_endpoints(state)
    return state


def test_all_flows_and_groups_serialize() -> None:
    view = network_view(running_state())
    assert sum(len(s.endpoints) for s in view.services) >= 9
    dp = FakeDatapath()
    count = 0
    for node in view.nodes:
        for group in groups_for_node(view, node.name):
            msg = ofp.group_mod(dp, group, "add")
            msg.set_xid(1)
            msg.serialize()
        for flow in flows_for_node(view, node.name):
            for delete in (False, True):
                msg = ofp.flow_mod(dp, flow, delete=delete)
                msg.set_xid(1)
                msg.serialize()
                count += 1
    assert count > 100
    assert any(s.affinity_timeout == 0 for s in view.services)


def test_reject_answers_tcp_with_rst_and_udp_with_icmp() -> None:
    from os_ken.lib.packet import ethernet, icmp, ipv4, packet, tcp, udp
    syn = packet.Packet()
    syn.add_protocol(ethernet.ethernet(dst="0a:58:0a:f4:01:01", src="0a:58:0a:f4:01:02"))
    syn.add_protocol(ipv4.ipv4(src="10.244.1.2", dst="10.96.0.7", proto=6))
    syn.add_protocol(tcp.tcp(src_port=40000, dst_port=80, seq=1000, bits=tcp.TCP_SYN))
    syn.serialize()
    reply = packet.Packet(build_reject(bytes(syn.data)))
    ip, seg = reply.get_protocol(ipv4.ipv4), reply.get_protocol(tcp.tcp)
    assert (ip.src, ip.dst, seg.src_port, seg.dst_port) == ("10.96.0.7", "10.244.1.2", 80, 40000)
    assert seg.bits & tcp.TCP_RST and seg.ack == 1001
    assert reply.get_protocol(ethernet.ethernet).dst == "0a:58:0a:f4:01:02"
    dgram = packet.Packet()
    dgram.add_protocol(ethernet.ethernet())
    dgram.add_protocol(ipv4.ipv4(src="10.244.1.2", dst="10.96.0.7", proto=17))
    dgram.add_protocol(udp.udp(src_port=5000, dst_port=53))
    dgram.add_protocol(b"hello")
    dgram.serialize()
    unreachable = packet.Packet(build_reject(bytes(dgram.data)))
    msg = unreachable.get_protocol(icmp.icmp)
    assert msg.type == icmp.ICMP_DEST_UNREACH and msg.code == icmp.ICMP_PORT_UNREACH_CODE


class SendingDatapath(FakeDatapath):
    def __init__(self) -> None:
        self.xid = 41
        self.sent: list[bytes] = []

    def send(self, buf: bytes) -> None:
        self.sent.append(buf)


def test_a_sync_is_one_buffer_of_os_ken_messages_each_with_its_own_xid() -> None:
    view = network_view(running_state())
    dp, encoder = SendingDatapath(), ofp.Encoder()
    flows = flows_for_node(view, view.nodes[0].name)
    groups = groups_for_node(view, view.nodes[0].name)
    batch = ofp.Batch(dp)
    for group in groups:
        batch.add(encoder.group(dp, group, "add"), group.cookie, f"group {group.group_id}")
    for flow in flows:
        batch.add(encoder.flow(dp, flow), flow.cookie, flow.to_ofctl)
    batch.send()
    assert len(dp.sent) == 1
    data, offset, xids, expected = dp.sent[0], 0, [], []
    for msg in [ofp.group_mod(dp, g, "add") for g in groups] + [ofp.flow_mod(dp, f) for f in flows]:
        msg.xid = 0
        msg.serialize()
        expected.append(bytes(msg.buf))
    for want in expected:
        length = int.from_bytes(data[offset + 2:offset + 4], "big")
        message = bytearray(data[offset:offset + length])
        xids.append(int.from_bytes(message[4:8], "big"))
        message[4:8] = b"\0\0\0\0"
        assert bytes(message) == want
        offset += length
    assert offset == len(data)
    assert xids == list(range(42, 42 + len(expected))) and dp.xid == xids[-1]
    cookie, what = batch.xids[xids[-1]]
    assert cookie == flows[-1].cookie and what() == flows[-1].to_ofctl()  # an error names its flow


def test_the_encoder_serializes_a_message_once_and_forgets_what_a_view_no_longer_has() -> None:
    view = network_view(running_state())
    dp, encoder = SendingDatapath(), ofp.Encoder()
    flow, other = flows_for_node(view, view.nodes[0].name)[:2]
    first = encoder.flow(dp, flow)
    assert encoder.flow(dp, flow) is first
    encoder.rotate()
    encoder.flow(dp, other)
    assert encoder.flow(dp, flow) is first  # kept for one view
    encoder.rotate()
    encoder.rotate()
    assert ("flow", flow, False) not in encoder.current and ("flow", flow, False) not in encoder.previous
