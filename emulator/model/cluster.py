"""ClusterConfig: the validated, typed form of a ``kind: Cluster`` spec."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.model.calico import CalicoConfig
from emulator.model.images import Image
from emulator.model.network import AddressPool, PodNetwork, ServiceNetwork, Underlay, pod_mtu
from emulator.model.node import Node

API_VERSION = "k8semu.io/v1alpha1"
# a pod's eth0: one end of a veth pair whose other end is its node's switch port (as Antrea,
# Flannel and Calico make it), or the switch's internal port itself moved into the pod (as
# Kube-OVN's internal-port type): twice the throughput on the userspace datapath, and a
# namespace move (~18 ms, serialized in the kernel) per pod at start (docs/benchmarks.md, #17)
POD_INTERFACES = ("veth", "internal-port")
# spec.network.cni: the overlay programmed by k8semu's OpenFlow controller (Antrea-style, the
# default), Flannel's plumbing made by the real CNI plugins, flannel.1 and kube-proxy (issue
# #13), or Calico's routed pods: /26 blocks, cali veths, BIRD's BGP and kube-proxy (issue #14)
CNIS = ("openflow", "flannel", "calico")
PROXY_MODES = ("iptables", "nftables")  # spec.network.kubeProxy.mode (kube-proxy's own names)
FLANNEL_BACKENDS = ("vxlan", "host-gw")  # spec.network.flannel.backend (Flannel's Backend.Type)


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
    pod_interface: str = "veth"  # spec.network.podInterface: veth | internal-port (POD_INTERFACES)
    cni: str = "openflow"  # spec.network.cni (CNIS)
    kube_proxy: str = ""  # spec.network.kubeProxy.mode: "" (the controller serves Services) or PROXY_MODES
    flannel_backend: str = "vxlan"  # spec.network.flannel.backend (FLANNEL_BACKENDS)
    min_sync_period: float = 1.0  # spec.network.kubeProxy.minSyncPeriod, seconds (kube-proxy's default 1s)
    calico: CalicoConfig | None = None  # spec.network.calico (cni: calico only)
    impairments: tuple = ()  # spec.impairments' links (model.faults.Impairment), applied at up
    partitions: tuple = ()  # spec.impairments' partitions (model.faults.Partition)
    time_scale: float = 1.0  # spec.timeScale: the node lifecycle's timers times this (a lab's 0.1: 10x faster)

    @property
    def kernel_dataplane(self) -> bool:
        """Pods on a Linux bridge made by CNI plugins, Services by kube-proxy's rules: no Open
        vSwitch and no controller (flannel: a bridge; calico: routed veths)."""
        return self.cni in ("flannel", "calico")

    @property
    def openflow_with_kube_proxy(self) -> bool:
        """``cni: openflow`` with ``kubeProxy.mode``: the controller serves the pods' Service
        traffic in OVS and kube-proxy the node's own and what arrives from outside (NodePorts,
        load-balancer and external IPs), as Antrea with ``proxyAll: false`` beside kube-proxy."""
        return self.cni == "openflow" and bool(self.kube_proxy)

    @property
    def upstream_dns(self) -> str:
        """The resolver the nodes use (their /etc/resolv.conf): the first external DNS host."""
        return next((h.ip for h in self.external_hosts if h.dns_server), "")

    @property
    def pod_mtu(self) -> int:
        """The underlay's less VXLAN's 50 bytes; Flannel's host-gw and Calico's unencapsulated
        pools encapsulate nothing."""
        if self.cni == "flannel" and self.flannel_backend == "host-gw":
            return self.underlay.mtu
        if self.calico is not None and not any(p.vxlan for p in self.calico.pools):
            return self.underlay.mtu
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
