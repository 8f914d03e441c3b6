"""The cluster-wide address plans, modelled as objects that apply to many nodes (IPMininet's
overlays): the underlay subnet, the pod subnet split into per-node CIDRs as kubeadm's node IPAM
controller does, and the service subnet.
"""
from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Iterator

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
VXLAN_VNI = 1  # the overlay's tunnel, on every node
VXLAN_PORT = 4789
FLANNEL_VNI = 1  # cni: flannel: flannel.1's VNI and UDP port, Flannel's (the Linux default port, not IANA's)
FLANNEL_PORT = 8472


@dataclass(frozen=True)
class Underlay:
    subnet: str = "172.18.0.0/24"
    mtu: int = 1500
    # more subnets (racks), each reached from the others through the underlay router, which holds
    # the .1 of every subnet; nodes name theirs (``underlaySubnet``), external hosts sit in ``subnet``
    routed: tuple[str, ...] = ()

    @property
    def subnets(self) -> tuple[str, ...]:
        return (self.subnet,) + self.routed

    def node_ip(self, index: int, subnet: str = "") -> str:
        """Nodes take addresses from .2 upwards (.1 is the router's, emulated when there are
        routed subnets and otherwise left free: the nodes' default route ends there, sealed)."""
        net = ipaddress.IPv4Network(subnet or self.subnet)
        return str(net.network_address + 2 + index)

    @staticmethod
    def router_ip(subnet: str) -> str:
        return str(ipaddress.IPv4Network(subnet).network_address + 1)

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    def capacity(self, subnet: str = "") -> int:
        return ipaddress.IPv4Network(subnet or self.subnet).num_addresses - 3


@dataclass(frozen=True)
class PodNetwork:
    subnet: str = "10.244.0.0/16"
    node_mask: int = 24

    def node_cidr(self, index: int) -> str:
        net = ipaddress.IPv4Network(self.subnet)
        start = int(net.network_address) + index * (1 << (32 - self.node_mask))
        return str(ipaddress.IPv4Network((start, self.node_mask)))

    def node_capacity(self) -> int:
        """Pods per node: the CIDR less network, gateway (.1) and broadcast."""
        return (1 << (32 - self.node_mask)) - 3

    def max_nodes(self) -> int:
        return 1 << (self.node_mask - ipaddress.IPv4Network(self.subnet).prefixlen)


@dataclass(frozen=True)
class ServiceNetwork:
    subnet: str = "10.96.0.0/12"

    def address(self, offset: int) -> str:
        return str(ipaddress.IPv4Network(self.subnet).network_address + offset)

    @property
    def dns_ip(self) -> str:
        """The tenth address, kept for cluster DNS as kubeadm does (10.96.0.10)."""
        return self.address(10)


def gateway_ip(node_cidr: str) -> str:
    return str(ipaddress.IPv4Network(node_cidr).network_address + 1)


def overlaps(a: str, b: str) -> bool:
    return ipaddress.IPv4Network(a).overlaps(ipaddress.IPv4Network(b))


def pod_mtu(underlay_mtu: int) -> int:
    return underlay_mtu - VXLAN_OVERHEAD


@dataclass(frozen=True)
class AddressPool:
    """A MetalLB-style address pool as ranges of IPv4 addresses (first, last), in order.

    Kept as ranges, never expanded: a pool is looked up and iterated lazily, so its size costs
    nothing until addresses are handed out (``spec.network.loadBalancerPool`` caps it anyway).
    """
    ranges: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __contains__(self, ip: object) -> bool:
        try:
            value = int(ipaddress.IPv4Address(str(ip)))
        except ValueError:
            return False
        return any(first <= value <= last for first, last in self.ranges)

    def __iter__(self) -> Iterator[str]:
        for first, last in self.ranges:
            for value in range(first, last + 1):
                yield str(ipaddress.IPv4Address(value))

    def networks(self) -> list[ipaddress.IPv4Network]:
        """The fewest CIDRs covering the pool (for routes)."""
        out: list[ipaddress.IPv4Network] = []
        for first, last in self.ranges:
            out += ipaddress.summarize_address_range(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last))
        return list(ipaddress.collapse_addresses(out))


def address_key(ip: str) -> bytes:
    """Sorts IPv4 addresses in numeric order: their packed bytes (``socket.inet_aton``, in C).
    Why not ``ipaddress.IPv4Address``: parsing one per endpoint per pass took most of the
    endpoints controller's time on a 1,000-pod cluster."""
    return socket.inet_aton(ip)


@functools.lru_cache(maxsize=65536)
def in_network(ip: str, net: ipaddress.IPv4Network) -> bool:
    """``IPv4Address(ip) in net``, remembered: asked for every endpoint of every published view."""
    return ipaddress.IPv4Address(ip) in net
