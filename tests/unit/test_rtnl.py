"""runtime.rtnl without root: the messages it builds follow the kernel's layouts (nlmsghdr,
ifinfomsg, rtattr padding, the veth peer nested in IFLA_LINKINFO), and it reads the kernel's
answers (acknowledgement, refusal with its errno, a link with nested attributes, answers to
other requests skipped)."""
from __future__ import annotations

import errno
import struct

import pytest

from emulator.runtime import rtnl


class FakeSocket:
    """Records what is sent; answers with the replies given, built for the request's seq."""

    def __init__(self, replies) -> None:
        self.sent: list[bytes] = []
        self.replies = replies  # seq -> list of (type, body), the last NLMSG_ERROR

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        seq = rtnl.HEADER.unpack_from(self.sent[-1])[3]
        out = b""
        for s, (mtype, body) in [(seq - 1, (rtnl.NLMSG_ERROR, struct.pack("=i", 0)))] + [(seq, r) for r in self.replies]:
            out += rtnl.HEADER.pack(rtnl.HEADER.size + len(body), mtype, 0, s, 0) + body + b"\0" * (-len(body) % 4)
        return out

    def close(self) -> None:
        pass


def client(replies) -> rtnl.Rtnl:
    c = rtnl.Rtnl.__new__(rtnl.Rtnl)
    c.sock, c.seq = FakeSocket(replies), 0
    return c


def ack(code: int = 0) -> tuple[int, bytes]:
    return rtnl.NLMSG_ERROR, struct.pack("=i", -code)


def test_attributes_are_padded_to_four_bytes_and_read_back() -> None:
    a = rtnl.attr(rtnl.IFLA_IFNAME, rtnl.text("eth0"))
    assert a == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0\0\0"
    assert rtnl.attrs(a + rtnl.attr(rtnl.IFLA_MTU, rtnl.u32(1450))) == {3: b"eth0\0", 4: rtnl.u32(1450)}


def test_a_veth_request_nests_its_peer_in_linkinfo() -> None:
    body = rtnl.veth_request("eth0", "0a:58:0a:f4:01:05", 1450, "k8s0-abc", 7)
    top = rtnl.attrs(body[rtnl.IFINFO.size:])
    assert top[rtnl.IFLA_IFNAME] == b"eth0\0" and top[rtnl.IFLA_ADDRESS] == bytes.fromhex("0a580af40105")
    info = rtnl.attrs(top[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth\0"
    peer = rtnl.attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER]
    peer_attrs = rtnl.attrs(peer[rtnl.IFINFO.size:])
    assert peer_attrs == {rtnl.IFLA_IFNAME: b"k8s0-abc\0", rtnl.IFLA_MTU: rtnl.u32(1450),
                          rtnl.IFLA_NET_NS_FD: rtnl.u32(7)}


def test_a_request_is_acknowledged_or_refused_with_the_kernels_errno() -> None:
    c = client([ack()])
    c.add_default_route("10.244.1.1", 2)
    length, mtype, flags, seq, _ = rtnl.HEADER.unpack_from(c.sock.sent[0])
    assert (length, mtype, seq) == (len(c.sock.sent[0]), rtnl.RTM_NEWROUTE, 1)
    assert flags == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL
    c.sock.replies = [ack(errno.EEXIST)]
    with pytest.raises(rtnl.NetlinkError) as info:
        c.add_veth("eth0", "0a:58:0a:f4:01:05", 1450, "k8s0-abc", 7)
    assert info.value.errno == errno.EEXIST


def test_a_link_is_read_with_its_nested_kind_and_alias() -> None:
    kind = rtnl.attr(rtnl.IFLA_INFO_KIND, rtnl.text("tun"))
    linkinfo = struct.pack("=HH", 4 + len(kind), rtnl.IFLA_LINKINFO | 0x8000) + kind
    body = rtnl.IFINFO.pack(0, 1, 42, 0, 0) + rtnl.attr(rtnl.IFLA_IFNAME, rtnl.text("k8s0-abc")) + linkinfo \
        + rtnl.attr(rtnl.IFLA_IFALIAS, rtnl.text("k8semu:tag"))
    c = client([(rtnl.RTM_NEWLINK, body), ack()])
    assert c.link("k8s0-abc") == rtnl.Link(42, "k8s0-abc", "tun", "k8semu:tag")
    c.sock.replies = [ack(errno.ENODEV)]
    assert c.link("nope") is None
