"""``spec.network.underlay``: the subnet the nodes sit in, and optionally more subnets (racks)
with a router between them, as Calico's CrossSubnet modes and the course's "nodes in different
subnets" need::

    underlay:
      subnet: 172.18.0.0/24          # external hosts and, by default, every node
      routedSubnets: [172.18.1.0/24] # each reached through the underlay router (.1 of every subnet)
    nodes:
      - {name: worker, count: 2, underlaySubnet: 172.18.1.0/24}

What cannot work across a router is refused with the field named: Flannel's host-gw (its routes
go straight to the other nodes) and Calico pools without VXLAN (BGP's routes would point at the
router, which does not peer with the nodes; IPIP is not emulated).
"""
from __future__ import annotations

import ipaddress

from emulator.model.calico import CalicoConfig
from emulator.model.network import Underlay
from emulator.model.node import Node
from emulator.spec.reader import PathKey, Reader

MAX_ROUTED = 8


def read(r: Reader, at: PathKey, underlay: Underlay, others: dict[str, str]) -> Underlay:
    """``underlay`` with its routed subnets (each a /29 or larger, overlapping neither another
    underlay subnet nor ``others``: field name -> CIDR)."""
    routed: list[str] = []
    seen = [ipaddress.IPv4Network(underlay.subnet)]
    entries = r.seq(at + ("routedSubnets",))
    if len(entries) > MAX_ROUTED:
        r.fail(at + ("routedSubnets",), f"at most {MAX_ROUTED} routed subnets")
        return underlay
    for i, value in enumerate(entries):
        p = at + ("routedSubnets", i)
        try:
            net = ipaddress.IPv4Network(value, strict=True) if isinstance(value, str) else None
        except ValueError as exc:
            r.fail(p, f"invalid IPv4 CIDR {value!r}: {exc}")
            continue
        if net is None:
            r.fail(p, f"expected an IPv4 CIDR, got {value!r}")
            continue
        if net.prefixlen > 29:
            r.fail(p, f"{net} is too small (prefix longer than /29)")
            continue
        clash = next((s for s in seen if s.overlaps(net)), None)
        if clash is not None:
            r.fail(p, f"{net} overlaps the underlay subnet {clash}")
            continue
        field = next((f for f, cidr in others.items() if ipaddress.IPv4Network(cidr).overlaps(net)), None)
        if field is not None:
            r.fail(p, f"{net} overlaps {field} {others[field]}")
            continue
        seen.append(net)
        routed.append(str(net))
    return Underlay(underlay.subnet, underlay.mtu, tuple(routed))


def node_subnet(r: Reader, p: PathKey, underlay: Underlay) -> str:
    """A node entry's ``underlaySubnet`` (the underlay subnet when absent)."""
    value = r.string(p + ("underlaySubnet",), underlay.subnet)
    if value is None:
        return underlay.subnet
    try:
        net = str(ipaddress.IPv4Network(value, strict=True))
    except ValueError:
        net = ""
    if net not in underlay.subnets:
        r.fail(p + ("underlaySubnet",), f"{value!r} is not a subnet of spec.network.underlay "
                                        f"(subnet or routedSubnets: {', '.join(underlay.subnets)})")
        return underlay.subnet
    return net


def check_planes(r: Reader, net: PathKey, nodes: tuple[Node, ...], cni: str, flannel_backend: str,
                 calico: CalicoConfig | None) -> None:
    """Refuse what cannot cross the router when the nodes sit in more than one subnet."""
    if len({n.subnet for n in nodes}) < 2:
        return
    if cni == "flannel" and flannel_backend == "host-gw":
        r.fail(net + ("flannel", "backend"), "host-gw routes straight to the other nodes, so every node must sit in "
                                             "one underlay subnet; use backend: vxlan across subnets")
    if calico is not None:
        for i, pool in enumerate(calico.pools):
            if not pool.vxlan:
                r.fail(net + ("calico", "ipPools", i, "encapsulation"),
                       f"pool {pool.name}: nodes sit in several underlay subnets, where BGP's routes would point at "
                       "the router, which does not peer with the nodes (IPIP is not emulated): use VXLAN or "
                       "VXLANCrossSubnet")
