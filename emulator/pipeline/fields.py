"""Named register fields and marks (Antrea's fields.go): feature code never writes reg bits by hand.

A unit test asserts that no two fields overlap.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegField:
    reg: int
    start: int
    end: int  # inclusive
    name: str

    @property
    def nxm(self) -> str:
        return f"NXM_NX_REG{self.reg}[{self.start}..{self.end}]"

    @property
    def mask(self) -> int:
        return ((1 << (self.end - self.start + 1)) - 1) << self.start


@dataclass(frozen=True)
class RegMark:
    field: RegField
    value: int
    name: str

    @property
    def match(self) -> tuple[str, tuple[int, int]]:
        """(os-ken OXM name, (value, mask)) for a match on this mark."""
        return f"reg{self.field.reg}", (self.value << self.field.start, self.field.mask)


def marks(*wanted: RegMark) -> tuple[str, tuple[int, int]]:
    """One match on several marks of one register (OpenFlow takes one match per field)."""
    regs = {m.field.reg for m in wanted}
    if len(regs) != 1:
        raise ValueError(f"marks of one register only, got registers {sorted(regs)}")
    value = mask = 0
    for m in wanted:
        value |= m.value << m.field.start
        mask |= m.field.mask
    return f"reg{regs.pop()}", (value, mask)


PKT_SOURCE = RegField(0, 0, 3, "PktSourceField")
FROM_TUNNEL = RegMark(PKT_SOURCE, 1, "FromTunnel")
FROM_GATEWAY = RegMark(PKT_SOURCE, 2, "FromGateway")
FROM_POD = RegMark(PKT_SOURCE, 3, "FromPod")
HAIRPIN = RegField(0, 4, 4, "HairpinField")
# a pod reaching itself through a Service, or the node's gateway reaching an endpoint outside the
# pod network (a hostNetwork pod): SNATed so the reply comes back through the switch
HAIRPIN_MARK = RegMark(HAIRPIN, 1, "Hairpin")
ESTABLISHED = RegField(0, 5, 5, "ConnectionStateField")
ESTABLISHED_MARK = RegMark(ESTABLISHED, 1, "Established")  # an existing connection: skip policy
TARGET_OFPORT = RegField(1, 0, 31, "TargetOFPortField")
ENDPOINT_IP = RegField(3, 0, 31, "EndpointIPField")
ENDPOINT_PORT = RegField(4, 0, 15, "EndpointPortField")
AFFINITY = RegField(4, 16, 16, "AffinityField")
AFFINITY_HIT = RegMark(AFFINITY, 1, "AffinityHit")  # SessionAffinity remembered an endpoint

ALL_FIELDS = (PKT_SOURCE, HAIRPIN, ESTABLISHED, TARGET_OFPORT, ENDPOINT_IP, ENDPOINT_PORT, AFFINITY)


CT_MARK_HAIRPIN = 0x1  # ct_mark of a connection from a pod to itself through a Service
