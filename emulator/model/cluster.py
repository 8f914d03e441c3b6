"""ClusterConfig: the validated, typed form of a ``kind: Cluster`` spec."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.model.images import Image
from emulator.model.network import AddressPool, PodNetwork, ServiceNetwork, Underlay, pod_mtu
from emulator.model.node import Node

API_VERSION = "k8semu.io/v1alpha1"


@dataclass(frozen=True)
class DNSConfig:
    enabled: bool = True
    replicas: int = 2
    corefile: str = ""  # "": kubeadm's default Corefile


@dataclass(frozen=True)
class IngressConfig:
    enabled: bool = False  # like kind and minikube, the ingress controller is an add-on
    node_port: int = 30080
    tls_node_port: int = 30443


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    nodes: tuple[Node, ...]
    underlay: Underlay = field(default_factory=Underlay)
    pods: PodNetwork = field(default_factory=PodNetwork)
    services: ServiceNetwork = field(default_factory=ServiceNetwork)
    cluster_domain: str = "cluster.local"
    images: dict[str, Image] = field(default_factory=dict)
    lb_pool: AddressPool = field(default_factory=AddressPool)  # LoadBalancer addresses (MetalLB L2), in order
    external_hosts: tuple = ()  # ExternalHost: emulated hosts outside the cluster
    dns: DNSConfig = field(default_factory=DNSConfig)
    ingress: IngressConfig = field(default_factory=IngressConfig)
    manifests: tuple = ()  # model objects, in apply order
    warnings: tuple[str, ...] = ()
    file: str = ""
    allow_privileged: bool = False  # spec.security.allowPrivileged: pods may be privileged or add any capability

    @property
    def upstream_dns(self) -> str:
        """The resolver the nodes use (their /etc/resolv.conf): the first external DNS host."""
        return next((h.ip for h in self.external_hosts if h.dns_server), "")

    @property
    def pod_mtu(self) -> int:
        return pod_mtu(self.underlay.mtu)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


@dataclass(frozen=True)
class ExternalHost:
    """A host on the underlay that is not a node: an "internet" client or server."""

    name: str
    ip: str
    index: int
    dns_records: tuple[tuple[str, str], ...] = ()  # (name, address): runs a DNS server if set

    @property
    def dns_server(self) -> bool:
        return bool(self.dns_records)
