"""What both of kube-proxy's modes compute the same way: a Service port's name as kube-proxy prints
it, and which endpoints a node uses (pkg/proxy/topology.go CategorizeEndpoints)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from emulator.errors import RenderError
from emulator.model.netview import EndpointView, ServicePortView


def port_name(svc: ServicePortView) -> str:
    """kube-proxy's ServicePortName.String(): ``namespace/name:port`` (``namespace/name`` for an
    unnamed port)."""
    return f"{svc.namespace}/{svc.name}" + (f":{svc.port_name}" if svc.port_name else "")


@dataclass(frozen=True)
class Endpoints:
    """proxy.CategorizeEndpoints for one node: the endpoints of the Cluster and the Local policy,
    every endpoint reachable from this node, and whether the Service has any usable endpoint."""
    cluster: tuple[EndpointView, ...]
    local: tuple[EndpointView, ...]
    reachable: tuple[EndpointView, ...]
    any: bool


@dataclass(frozen=True)
class Plan:
    """What syncProxyRules decides for one Service port on one node, in both modes: its endpoints,
    whether the Cluster and Local policy chains are used, which traffic has endpoints (internal:
    to the cluster IP; external: to NodePorts, external and load-balancer IPs), and whether the
    external chain is written (it short-circuits local traffic even without external endpoints)."""
    endpoints: Endpoints
    external_local: bool
    uses_cluster: bool
    uses_local: bool
    has_internal: bool
    has_external: bool
    uses_external_chain: bool


def plan(svc: ServicePortView, node: str) -> Plan:
    eps = categorize(svc, node)
    accessible = externally_accessible(svc)
    external_local = svc.external_local and accessible
    return Plan(eps, external_local,
                bool(eps.cluster) and (not svc.internal_local or (accessible and not external_local)),
                bool(eps.local) and (svc.internal_local or external_local),
                eps.any and (bool(eps.local) or not svc.internal_local),
                eps.any and (bool(eps.local) or not external_local),
                eps.any and accessible)


def externally_accessible(svc: ServicePortView) -> bool:
    return bool(svc.node_port or svc.lb_ip or svc.external_ips)


def categorize(svc: ServicePortView, node: str) -> Endpoints:
    ending = set(svc.terminating)
    key = (lambda e: (ipaddress.IPv4Address(e.ip), e.port))
    ready = sorted((e for e in svc.endpoints if e not in ending), key=key)
    serving_terminating = sorted(ending, key=key)
    external_local = svc.external_local and externally_accessible(svc)
    uses_cluster = not svc.internal_local or (externally_accessible(svc) and not external_local)
    uses_local = svc.internal_local or external_local
    cluster: list[EndpointView] = (ready or serving_terminating) if uses_cluster else []
    has_any = bool(cluster)
    local: list[EndpointView] = []
    if uses_local:
        has_any = has_any or bool(ready or serving_terminating)
        local = [e for e in ready if e.node == node] or [e for e in serving_terminating if e.node == node]
    reachable = {(e.ip, e.port): e for e in cluster + local}
    return Endpoints(tuple(cluster), tuple(local), tuple(reachable[k] for k in sorted(
        reachable, key=lambda k: (ipaddress.IPv4Address(k[0]), k[1]))), has_any)


def word(text: str) -> str:
    """A value as one iptables-restore word; anything that could be syntax is refused."""
    if not text or any(c.isspace() or c in "\"'\\#" or ord(c) < 32 for c in text):
        raise RenderError(f"{text!r} cannot be written into kube-proxy's rules")
    return text
