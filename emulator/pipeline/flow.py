"""Flows and actions as values, rendered the way ``ovs-ofctl dump-flows`` prints them.

Matches use os-ken's OXM field names (``ipv4_dst``, ``arp_tpa``, ``reg0``) so that
``emulator.controller.ofp`` can pass them straight to ``OFPMatch``; ``to_ofctl`` translates to
ovs-ofctl's spelling and writes table names instead of numbers, for golden files and docs.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Union

from emulator.pipeline.fields import RegField, RegMark
from emulator.pipeline.tables import TABLE_IDS

ETH_IP = 0x0800
ETH_ARP = 0x0806

# os-ken OXM name -> (ovs-ofctl match name, NXM name for move actions)
OFCTL_NAMES = {
    "in_port": ("in_port", ""), "eth_src": ("dl_src", "NXM_OF_ETH_SRC[]"),
    "eth_dst": ("dl_dst", "NXM_OF_ETH_DST[]"), "ipv4_src": ("nw_src", ""),
    "ipv4_dst": ("nw_dst", ""), "arp_op": ("arp_op", ""), "arp_spa": ("arp_spa", "NXM_OF_ARP_SPA[]"),
    "arp_tpa": ("arp_tpa", "NXM_OF_ARP_TPA[]"), "arp_sha": ("arp_sha", "NXM_NX_ARP_SHA[]"),
    "arp_tha": ("arp_tha", "NXM_NX_ARP_THA[]"), "reg0": ("reg0", ""), "reg1": ("reg1", ""),
    "ip_proto": ("nw_proto", ""), "tcp_dst": ("tp_dst", ""), "udp_dst": ("tp_dst", ""),
    "reg3": ("reg3", ""), "reg4": ("reg4", ""), "ct_state": ("ct_state", ""), "ct_mark": ("ct_mark", ""),
    "conj_id": ("conj_id", ""), "sctp_dst": ("tp_dst", ""),
}
CT_FLAGS = {"new": 0x01, "est": 0x02, "rel": 0x04, "rpl": 0x08, "inv": 0x10, "trk": 0x20, "snat": 0x40, "dnat": 0x80}
IP_PROTO = {"TCP": 6, "UDP": 17, "SCTP": 132}


def ct_state(*flags: str) -> tuple[str, tuple[int, int]]:
    """``ct_state("+new", "+trk")`` -> a masked ct_state match."""
    value = mask = 0
    for flag in flags:
        bit = CT_FLAGS[flag[1:]]
        mask |= bit
        value |= bit if flag[0] == "+" else 0
    return "ct_state", (value, mask)


@dataclass(frozen=True)
class Output:
    port: int

    def ofctl(self) -> str:
        return f"output:{self.port}"


@dataclass(frozen=True)
class OutputInPort:
    def ofctl(self) -> str:
        return "IN_PORT"


@dataclass(frozen=True)
class OutputReg:
    field: RegField

    def ofctl(self) -> str:
        return f"output:{self.field.nxm}"


@dataclass(frozen=True)
class SetField:
    field: str
    value: Any

    def ofctl(self) -> str:
        return f"set_field:{self.value}->{OFCTL_NAMES[self.field][0]}"


@dataclass(frozen=True)
class LoadMark:
    mark: RegMark

    def ofctl(self) -> str:
        return f"load:{self.mark.value:#x}->{self.mark.field.nxm}"


@dataclass(frozen=True)
class LoadReg:
    field: RegField
    value: int

    def ofctl(self) -> str:
        return f"load:{self.value:#x}->{self.field.nxm}"


@dataclass(frozen=True)
class Move:
    src: str
    dst: str
    n_bits: int

    def ofctl(self) -> str:
        return f"move:{OFCTL_NAMES[self.src][1]}->{OFCTL_NAMES[self.dst][1]}"


@dataclass(frozen=True)
class DecTtl:
    def ofctl(self) -> str:
        return "dec_ttl"


@dataclass(frozen=True)
class Ct:
    """ct(): send through conntrack in ``zone``, optionally commit, NAT, then go to ``table``."""
    zone: int
    table: str
    commit: bool = False
    nat: str = ""  # "": none; "nat": apply existing bindings; "dst"/"src": NAT to nat_ip[:nat_port]
    nat_ip: str = ""
    nat_port: int = 0
    mark: int = 0  # ct_mark to set when committing

    def ofctl(self) -> str:
        parts = (["commit"] if self.commit else []) + [f"table={self.table}", f"zone={self.zone}"]
        if self.mark:
            parts.append(f"exec(set_field:{self.mark:#x}->ct_mark)")
        if self.nat == "nat":
            parts.append("nat")
        elif self.nat in ("dst", "src"):
            parts.append(f"nat({self.nat}={self.nat_ip}{':' + str(self.nat_port) if self.nat_port else ''})")
        return f"ct({','.join(parts)})"


@dataclass(frozen=True)
class GroupAction:
    group_id: int

    def ofctl(self) -> str:
        return f"group:{self.group_id}"


@dataclass(frozen=True)
class Resubmit:
    table: str

    def ofctl(self) -> str:
        return f"resubmit(,{self.table})"


@dataclass(frozen=True)
class ToController:
    """Send the whole packet to the controller (used to answer with a TCP RST or ICMP error)."""
    reason: str = "reject"

    def ofctl(self) -> str:
        return "CONTROLLER:65535"


@dataclass(frozen=True)
class LearnAffinity:
    """learn(): remember client IP -> chosen endpoint for a Service port (sessionAffinity)."""
    table: str
    protocol: str
    idle_timeout: int
    cookie: int

    def ofctl(self) -> str:
        proto = self.protocol.lower()
        return (f"learn(table={self.table},idle_timeout={self.idle_timeout},priority=200,"
                f"cookie={self.cookie:#x},{proto},NXM_OF_IP_SRC[],NXM_OF_IP_DST[],"
                f"NXM_OF_{proto.upper()}_DST[],load:NXM_NX_REG3[]->NXM_NX_REG3[],"
                f"load:NXM_NX_REG4[0..15]->NXM_NX_REG4[0..15],load:0x1->NXM_NX_REG4[16])")


@dataclass(frozen=True)
class Conjunction:
    """One clause of a conjunctive match (OVS's conjunction(id, k/n))."""
    id: int
    clause: int  # 1-based
    clauses: int

    def ofctl(self) -> str:
        return f"conjunction({self.id},{self.clause}/{self.clauses})"


Action = Union[Output, OutputInPort, Conjunction, OutputReg, SetField, LoadMark, LoadReg, Move, DecTtl, Ct,
               GroupAction, Resubmit, ToController, LearnAffinity]


@dataclass(frozen=True)
class Group:
    """A select group: one bucket per endpoint, OVS hashes each new connection to a bucket;
    buckets are equally likely unless ``weights`` says otherwise (one per bucket)."""
    group_id: int
    buckets: tuple[tuple[Action, ...], ...]
    cookie: int = 0
    weights: tuple[int, ...] = ()

    def weight(self, index: int) -> int:
        return self.weights[index] if self.weights else 100

    def to_ofctl(self) -> str:
        buckets = ",".join(f"bucket={'weight:' + str(self.weights[i]) + ',' if self.weights else ''}"
                           + ",".join(a.ofctl() for a in b) for i, b in enumerate(self.buckets))
        return f"group_id={self.group_id},type=select,{buckets}"


MatchValue = Union[int, str, tuple]


def _render_match(name: str, value: MatchValue) -> str:
    if name == "eth_type":
        return {ETH_IP: "ip", ETH_ARP: "arp"}.get(value, f"dl_type={value:#06x}")
    if name == "ip_proto":
        return {6: "tcp", 17: "udp", 132: "sctp"}.get(value, f"nw_proto={value}")
    if name == "ct_state":
        v, mask = value
        return "ct_state=" + "".join(("+" if v & bit else "-") + flag for flag, bit in CT_FLAGS.items()
                                     if mask & bit)
    ofname = OFCTL_NAMES[name][0]
    if isinstance(value, tuple):
        v, mask = value
        if isinstance(v, str):  # address/netmask
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
            return f"{ofname}={v}/{prefix}"
        return f"{ofname}={v:#x}/{mask:#x}"
    return f"{ofname}={value}"


@dataclass(frozen=True)
class Flow:
    table: str
    priority: int
    match: tuple[tuple[str, MatchValue], ...] = ()
    actions: tuple[Action, ...] = ()
    goto: str | None = None
    cookie: int = 0
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.table not in TABLE_IDS or (self.goto and self.goto not in TABLE_IDS):
            raise ValueError(f"unknown table in {self!r}")

    @property
    def key(self) -> tuple:
        """What OpenFlow considers the identity of a flow (strict modify/delete)."""
        return (self.table, self.priority, self.match)

    @property
    def table_id(self) -> int:
        return TABLE_IDS[self.table]

    def to_ofctl(self) -> str:
        match = ",".join(_render_match(k, v) for k, v in self.match)
        acts = [a.ofctl() for a in self.actions]
        if self.goto:
            acts.append(f"goto_table:{self.goto}")
        return (f"cookie={self.cookie:#x}, table={self.table}, priority={self.priority}"
                f"{',' + match if match else ''} actions={','.join(acts) or 'drop'}")


def cidr_match(cidr: str) -> tuple[str, str]:
    net = ipaddress.IPv4Network(cidr)
    return str(net.network_address), str(net.netmask)
