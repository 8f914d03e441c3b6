"""Service, Endpoints and EndpointSlice.

A Service's ports name their backends by ``targetPort``: a number, or the name of a container
port that each endpoint pod resolves for itself (so two pods may serve one Service on
different ports). Endpoints carry what the endpoints controller (or a person, for selector-less
Services) says is behind the Service.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str = 0  # 0: same as port
    node_port: int = 0  # 0: allocate (NodePort/LoadBalancer)

    def target(self) -> int | str:
        return self.target_port or self.port


@dataclass(frozen=True)
class Service:
    meta: ObjectMeta
    type: str = "ClusterIP"
    selector: dict[str, str] | None = None  # None: selector-less (Endpoints written by hand)
    ports: tuple[ServicePort, ...] = ()
    cluster_ip: str = ""  # "" allocate, "None" headless, else requested
    external_name: str = ""
    session_affinity: str = "None"
    affinity_timeout: int = 10800
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    load_balancer_ip: str = ""
    publish_not_ready: bool = False  # publishNotReadyAddresses: not-ready pods are endpoints too
    load_balancer_class: str = ""  # set: another implementation's Service; the built-in pool skips it
    source: SourceRef | None = field(default=None, compare=False)
    external_ips: tuple[str, ...] = ()  # spec.externalIPs: addresses the nodes answer for on the ports
    health_check_node_port: int = 0  # requested; 0: allocated when needs_health_check
    source_ranges: tuple[str, ...] = ()  # loadBalancerSourceRanges: who may reach the LoadBalancer address

    @property
    def needs_health_check(self) -> bool:
        """kube-proxy serves a health check for this Service (apiservice.NeedsHealthCheck)."""
        return self.type == "LoadBalancer" and self.external_traffic_policy == "Local"

    @property
    def source_networks(self) -> tuple[str, ...]:
        """loadBalancerSourceRanges as networks (``10.0.0.1/24`` is 10.0.0.0/24), as kube-proxy
        parses them; the spec layer let only valid IPv4 CIDRs through."""
        return tuple(str(ipaddress.IPv4Network(r.strip(), strict=False)) for r in self.source_ranges)

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"


@dataclass(frozen=True)
class EndpointAddress:
    ip: str
    node: str = ""
    pod: str = ""  # targetRef name
    hostname: str = ""


@dataclass(frozen=True)
class EndpointPort:
    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class EndpointSubset:
    addresses: tuple[EndpointAddress, ...] = ()
    not_ready: tuple[EndpointAddress, ...] = ()
    ports: tuple[EndpointPort, ...] = ()
    # terminating pods (deleted, still running) with their readiness, "serving": not part of the
    # v1 Endpoints object (the endpoints controller leaves them out) but of its EndpointSlice,
    # and the proxy's fallback when no endpoint is ready
    terminating: tuple[tuple[EndpointAddress, bool], ...] = ()


@dataclass(frozen=True)
class SliceEndpoint:
    """One address of an EndpointSlice with its conditions (discovery.k8s.io/v1)."""
    address: EndpointAddress
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class Endpoints:
    meta: ObjectMeta
    subsets: tuple[EndpointSubset, ...] = ()
    source: SourceRef | None = field(default=None, compare=False)
    managed: bool = False  # written by the endpoints controller (not by a person)


@dataclass(frozen=True)
class EndpointSlice:
    """discovery.k8s.io/v1; written by hand for selector-less Services, or mirrored by us."""

    meta: ObjectMeta
    endpoints: tuple[SliceEndpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()
    source: SourceRef | None = field(default=None, compare=False)
    managed: bool = False
