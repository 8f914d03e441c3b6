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


PKT_SOURCE = RegField(0, 0, 3, "PktSourceField")
FROM_TUNNEL = RegMark(PKT_SOURCE, 1, "FromTunnel")
FROM_GATEWAY = RegMark(PKT_SOURCE, 2, "FromGateway")
FROM_POD = RegMark(PKT_SOURCE, 3, "FromPod")
TARGET_OFPORT = RegField(1, 0, 31, "TargetOFPortField")

ALL_FIELDS = (PKT_SOURCE, TARGET_OFPORT)
