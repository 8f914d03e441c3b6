"""Node: a machine of the emulated cluster, with its underlay address and its pod CIDR."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model import naming
from emulator.model.network import gateway_ip

CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str = "NoSchedule"
    value: str = ""


@dataclass(frozen=True)
class Node:
    name: str
    index: int
    role: str  # control-plane | worker
    ip: str
    pod_cidr: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    source: SourceRef | None = field(default=None, compare=False)
    subnet: str = ""  # its underlay subnet (spec.network.underlay): the spec loader always sets it

    @property
    def prefixlen(self) -> int:
        """Of its underlay subnet (eth0's address); /24 for a node made without one (unit tests)."""
        return ipaddress.IPv4Network(self.subnet).prefixlen if self.subnet else 24

    def same_subnet(self, other: "Node") -> bool:
        """On one underlay subnet: reachable without the router (Calico's CrossSubnet test)."""
        return self.subnet == other.subnet

    @property
    def gateway_ip(self) -> str:
        return gateway_ip(self.pod_cidr)

    @property
    def gateway_mac(self) -> str:
        return naming.mac_from_ip(self.gateway_ip)

    @property
    def vtep_mac(self) -> str:
        return naming.vtep_mac(self.ip)

    def all_labels(self) -> dict[str, str]:
        """The labels kubelet and kubeadm put on a node, then the spec's own."""
        base = {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
        }
        if self.role == "control-plane":
            base["node-role.kubernetes.io/control-plane"] = ""
        return {**base, **self.labels}
