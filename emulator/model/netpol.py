"""networking.k8s.io/v1 NetworkPolicy: who may talk to the pods a policy selects.

A peer is a podSelector, a namespaceSelector, both (AND), or an ipBlock with exceptions; a port
is a number or a container port name, optionally a range up to endPort. ``policy_types``
defaults as Kubernetes does: Ingress always, Egress when the policy has egress rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta
from emulator.model.selectors import LabelSelector


@dataclass(frozen=True)
class IPBlock:
    cidr: str
    excepts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Peer:
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True)
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol
    end_port: int | None = None


@dataclass(frozen=True)
class Rule:
    peers: tuple[Peer, ...] = ()  # empty: every peer
    ports: tuple[PolicyPort, ...] = ()  # empty: every port


@dataclass(frozen=True)
class NetworkPolicy:
    meta: ObjectMeta
    pod_selector: LabelSelector
    policy_types: tuple[str, ...]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    source: SourceRef | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"
