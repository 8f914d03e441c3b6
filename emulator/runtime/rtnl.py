"""The few rtnetlink requests a pod's interface needs, as raw messages on a netlink socket.

Written here rather than taken from pyroute2 (which k8semu used before): a pod's interface is
eight fixed requests (make a veth with its peer in another namespace, look a link up, set an
alias, a name, an address, up, add an address and a default route), and in the shim's forked
helpers pyroute2 0.9 cost more than everything else a sandbox does: its synchronous API drives
an asyncio core, so opening a socket took 1-3 ms and each request about 0.4 ms of Python, and
importing it added 14.5 MB to the shim, which every helper fork copies (docs/benchmarks.md,
issue #17). Each message here is a ``struct.pack``; the formats are the kernel's uapi
(linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h).

A socket belongs to the network namespace its process was in when it was made, whatever the
process does afterwards: the shim opens one in the root namespace before entering the pod's.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

# linux/netlink.h, linux/rtnetlink.h
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 18, 20, 24
# linux/if_link.h, linux/veth.h
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD = 1, 3, 4, 18, 20, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags


class NetlinkError(OSError):
    """The kernel refused a request (``errno`` is its error)."""


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr (length, type, payload), padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def text(value: str) -> bytes:
    return value.encode() + b"\0"


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def mac(value: str) -> bytes:
    return bytes(int(part, 16) for part in value.split(":"))


def ipv4(value: str) -> bytes:
    return ipaddress.IPv4Address(value).packed


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def attrs(data: bytes) -> dict[int, bytes]:
    """The rtattrs of a message body, by type (the first of each; nesting left to the caller)."""
    out: dict[int, bytes] = {}
    at = 0
    while at + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, at)
        if length < 4:
            break
        out.setdefault(kind & 0x3FFF, data[at + 4:at + length])  # without NLA_F_NESTED and friends
        at += (length + 3) & ~3
    return out


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str  # IFLA_INFO_KIND: "veth", "tun", "openvswitch", ... ("" when the kernel gives none)
    alias: str


def veth_request(name: str, mac_address: str, mtu: int, peer: str, peer_netns_fd: int) -> bytes:
    """The body of RTM_NEWLINK for a veth pair: ``name`` here, ``peer`` in another namespace."""
    peer_body = ifinfo() + attr(IFLA_IFNAME, text(peer)) + attr(IFLA_MTU, u32(mtu)) \
        + attr(IFLA_NET_NS_FD, u32(peer_netns_fd))
    info = attr(IFLA_INFO_KIND, text("veth")) + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_body))
    return ifinfo() + attr(IFLA_IFNAME, text(name)) + attr(IFLA_MTU, u32(mtu)) \
        + attr(IFLA_ADDRESS, mac(mac_address)) + attr(IFLA_LINKINFO, info)


class Rtnl:
    """A NETLINK_ROUTE socket in the namespace of the process that makes it; one request at a
    time, each acknowledged before the next."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one request; returns the (type, body) of the answers before the acknowledgement.

        Raises:
            NetlinkError: the kernel refused it.
        """
        self.seq += 1
        message = HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0) + body
        self.sock.send(message)
        answers: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(65536)
            at = 0
            while at + HEADER.size <= len(data):
                length, mtype, _, seq, _ = HEADER.unpack_from(data, at)
                payload = data[at + HEADER.size:at + length]
                at += (length + 3) & ~3
                if seq != self.seq:
                    continue  # not ours (a late answer to an earlier request)
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return answers
                answers.append((mtype, payload))

    # -- links ---------------------------------------------------------------------------
    def link(self, name: str) -> Link | None:
        """The link of that name in this socket's namespace, or None."""
        try:
            answers = self.request(RTM_GETLINK, ifinfo() + attr(IFLA_IFNAME, text(name)))
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        for mtype, body in answers:
            if mtype == RTM_NEWLINK:
                index = IFINFO.unpack_from(body)[2]
                found = attrs(body[IFINFO.size:])
                info = attrs(found.get(IFLA_LINKINFO, b""))
                return Link(index, found.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
                            info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode(),
                            found.get(IFLA_IFALIAS, b"").rstrip(b"\0").decode())
        return None

    def add_veth(self, name: str, mac_address: str, mtu: int, peer: str, peer_netns_fd: int) -> None:
        """A veth pair, refusing a taken name on either side (EEXIST)."""
        self.request(RTM_NEWLINK, veth_request(name, mac_address, mtu, peer, peer_netns_fd),
                     NLM_F_CREATE | NLM_F_EXCL)

    def set_link(self, index: int, *, up: bool = False, name: str = "", alias: str = "", mac_address: str = "",
                 mtu: int = 0, netns_fd: int | None = None) -> None:
        """Change a link: any of up, its name, alias, MAC address, MTU, or its namespace."""
        body = ifinfo(index, IFF_UP if up else 0, IFF_UP if up else 0)
        if name:
            body += attr(IFLA_IFNAME, text(name))
        if alias:
            body += attr(IFLA_IFALIAS, text(alias))
        if mac_address:
            body += attr(IFLA_ADDRESS, mac(mac_address))
        if mtu:
            body += attr(IFLA_MTU, u32(mtu))
        if netns_fd is not None:
            body += attr(IFLA_NET_NS_FD, u32(netns_fd))
        self.request(RTM_NEWLINK, body)

    def del_link(self, name: str) -> None:
        self.request(RTM_DELLINK, ifinfo() + attr(IFLA_IFNAME, text(name)))

    # -- addresses and routes ----------------------------------------------------------------
    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        body = IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index) \
            + attr(IFA_LOCAL, ipv4(address)) + attr(IFA_ADDRESS, ipv4(address))
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway: str, index: int) -> None:
        body = RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) \
            + attr(RTA_GATEWAY, ipv4(gateway)) + attr(RTA_OIF, u32(index))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)
