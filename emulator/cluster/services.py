"""Service allocations and the endpoints controller.

Allocation follows kube-apiserver: the service subnet's first address is the ``kubernetes``
Service, its tenth is kept for cluster DNS, other ClusterIPs are picked at random from the rest;
NodePorts (and a LoadBalancer's healthCheckNodePort when its externalTrafficPolicy is Local)
at random from 30000-32767; LoadBalancer addresses from the spec's pool, lowest free
first (MetalLB). A requested address or port that is taken or out of range refuses the object.

The endpoints controller keeps an Endpoints object and an EndpointSlice for every Service with
a selector: the matching pods with an address, ready ones as addresses, the rest as
notReadyAddresses, each with the Service's target ports resolved against the pod's container
ports (a named targetPort may differ from pod to pod).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from emulator.errors import Problem
from emulator.model import naming
from emulator.model.meta import ObjectMeta
from emulator.model.network import AddressPool, address_key
from emulator.model.pod import Pod
from emulator.model.service import (NODE_PORT_RANGE, EndpointAddress, EndpointPort, Endpoints,
                                    EndpointSlice, EndpointSubset, Service, ServicePort, SliceEndpoint)

KUBERNETES_SERVICE = "kubernetes"
# kube-apiserver's NodePort static band (KEP-3668, on by default since 1.29): the first
# min(max(16, size/32), 128) ports of the range are handed out at random only when every port
# above them is taken, so a Service asking for a low port (30080) finds it free
NODE_PORT_STATIC = min(max(16, (NODE_PORT_RANGE[1] - NODE_PORT_RANGE[0] + 1) // 32), 128)
DRAWS = 10000


def random_node_port(rng, taken) -> int:
    """A free NodePort as kube-apiserver's allocator draws one: uniformly above the static band
    while a port is free there, else in it; 0 when every port of the range is taken."""
    low = NODE_PORT_RANGE[0] + NODE_PORT_STATIC
    for _ in range(DRAWS):
        candidate = rng.randint(*NODE_PORT_RANGE)  # a draw in the static band is drawn again
        if candidate >= low and not taken(candidate):
            return candidate
    free = [p for p in range(low, NODE_PORT_RANGE[1] + 1) if not taken(p)] or \
        [p for p in range(NODE_PORT_RANGE[0], low) if not taken(p)]
    return rng.choice(free) if free else 0


SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass
class Allocation:
    cluster_ip: str = ""
    node_ports: tuple[int, ...] = ()
    lb_ip: str = ""
    health_check_node_port: int = 0  # LoadBalancer with externalTrafficPolicy Local


@dataclass
class Allocations:
    """What the API server has handed out; owned by the ClusterState.

    ``owners`` indexes every handed-out address and port by its Service, kept by ``commit`` and
    ``release`` (the only writers of ``by_service``), so an allocation costs the same with a
    thousand Services as with one."""

    subnet: str
    pool: AddressPool = field(default_factory=AddressPool)  # LoadBalancer addresses, in order
    by_service: dict[str, Allocation] = field(default_factory=dict)
    owners: dict[tuple[str, object], str] = field(default_factory=dict)  # (kind, value) -> Service key

    @staticmethod
    def _held(a: Allocation) -> list[tuple[str, object]]:
        held = [("ip", a.cluster_ip), ("lb", a.lb_ip)] + [("port", p) for p in (*a.node_ports, a.health_check_node_port)]
        return [(kind, value) for kind, value in held if value]

    def _other(self, kind: str, value: object, key: str) -> str | None:
        """The other Service holding ``value``, if any."""
        owner = self.owners.get((kind, value))
        return owner if owner != key else None

    def allocate(self, svc: Service, rng) -> tuple[Allocation | None, list[Problem]]:
        """Allocate (or keep) a Service's addresses and ports; on problems allocate nothing."""
        key = svc.key
        old = self.by_service.get(key, Allocation())
        problems: list[Problem] = []
        net = ipaddress.IPv4Network(self.subnet)
        cluster_ip = old.cluster_ip
        if svc.type == "ExternalName" or svc.headless:
            cluster_ip = ""
        elif svc.cluster_ip:
            if old.cluster_ip and svc.cluster_ip != old.cluster_ip:
                problems.append(Problem(svc.source, "spec.clusterIP", "field is immutable"))
            elif ipaddress.IPv4Address(svc.cluster_ip) not in net or svc.cluster_ip in (
                    str(net.network_address), str(net.broadcast_address)):
                problems.append(Problem(svc.source, "spec.clusterIP", f"Invalid value: {svc.cluster_ip!r}: "
                                        f"provided IP is not in the valid range. The range of valid IPs is {net}"))
            elif holder := self._other("ip", svc.cluster_ip, key):
                problems.append(Problem(svc.source, "spec.clusterIP", f"Invalid value: {svc.cluster_ip!r}: "
                                        f"provided IP is already allocated (to {holder})"))
            cluster_ip = svc.cluster_ip
        elif not cluster_ip:
            reserved = {str(net.network_address + 1), str(net.network_address + 10)}
            if key == f"default/{KUBERNETES_SERVICE}":
                cluster_ip = str(net.network_address + 1)
            else:
                for _ in range(10000):
                    candidate = str(net.network_address + rng.randrange(2, net.num_addresses - 1))
                    if not self._other("ip", candidate, key) and candidate not in reserved:
                        cluster_ip = candidate
                        break
        node_ports: list[int] = []

        def taken(port: int) -> bool:
            return bool(self._other("port", port, key)) or port in node_ports
        if svc.type in ("NodePort", "LoadBalancer"):
            for i, sp in enumerate(svc.ports):
                wanted = sp.node_port or (old.node_ports[i] if i < len(old.node_ports) else 0)
                if wanted and self._other("port", wanted, key):
                    problems.append(Problem(svc.source, f"spec.ports[{i}].nodePort",
                                            f"Invalid value: {wanted}: provided port is already allocated"))
                if not wanted or taken(wanted):
                    wanted = random_node_port(rng, taken)
                    if not wanted:
                        problems.append(Problem(svc.source, f"spec.ports[{i}].nodePort",
                                                "failed to allocate a nodePort: range is full"))
                node_ports.append(wanted)
        health = 0
        if svc.needs_health_check:  # one more node port, for the load balancer's health checks
            health = svc.health_check_node_port or old.health_check_node_port
            if health and svc.health_check_node_port and old.health_check_node_port not in (0, health):
                problems.append(Problem(svc.source, "spec.healthCheckNodePort", "field is immutable"))
            elif health and taken(health):
                problems.append(Problem(svc.source, "spec.healthCheckNodePort",
                                        f"Invalid value: {health}: provided port is already allocated"))
            if not health or taken(health):
                health = random_node_port(rng, taken)
                if not health:
                    problems.append(Problem(svc.source, "spec.healthCheckNodePort",
                                            "failed to allocate a nodePort: range is full"))
        lb_ip = ""
        if svc.type == "LoadBalancer" and not svc.load_balancer_class:  # another class: its controller's
            if svc.load_balancer_ip:
                if svc.load_balancer_ip not in self.pool:
                    problems.append(Problem(svc.source, "spec.loadBalancerIP",
                                            f"{svc.load_balancer_ip} is not in the cluster's loadBalancerPool"))
                elif holder := self._other("lb", svc.load_balancer_ip, key):
                    problems.append(Problem(svc.source, "spec.loadBalancerIP",
                                            f"{svc.load_balancer_ip} is already assigned to {holder}"))
                lb_ip = svc.load_balancer_ip
            else:
                lb_ip = old.lb_ip or next((ip for ip in self.pool if not self._other("lb", ip, key)), "")
        if problems:
            return None, problems
        return Allocation(cluster_ip, tuple(node_ports), lb_ip, health), []

    def commit(self, key: str, allocation: Allocation) -> None:
        self.release(key)
        self.by_service[key] = allocation
        for held in self._held(allocation):
            self.owners[held] = key

    def release(self, key: str) -> None:
        old = self.by_service.pop(key, None)
        for held in self._held(old) if old else ():
            if self.owners.get(held) == key:
                del self.owners[held]


def kubernetes_service() -> Service:
    """``default/kubernetes``: 443 -> the control plane's 6443 (nothing answers there yet)."""
    labels = {"component": "apiserver", "provider": "kubernetes"}
    return Service(ObjectMeta(KUBERNETES_SERVICE, "default", labels),
                   ports=(ServicePort(443, "TCP", "https", 6443),))


def kubernetes_endpoints(config) -> Endpoints:
    """The API server's address: the first control-plane node, port 6443 (kubeadm's)."""
    node = next((n for n in config.nodes if n.role == "control-plane"), config.nodes[0])
    return Endpoints(ObjectMeta(KUBERNETES_SERVICE, "default", {"endpointslice.kubernetes.io/skip-mirror": "true"}),
                     (EndpointSubset((EndpointAddress(node.ip),), (), (EndpointPort(6443, "TCP", "https"),)),))


def resolve_target(sp: ServicePort, pod: Pod) -> int | None:
    """The pod port a Service port sends to, or None if the pod has no such named port."""
    target = sp.target()
    if isinstance(target, int):
        return target
    for container in pod.spec.containers:
        for port in container.ports:
            if port.name == target and port.protocol == sp.protocol:
                return port.container_port
    return None


def endpoints_for(svc: Service, pods: list[tuple[Pod, str, str, bool, bool]]) -> Endpoints:
    """Endpoints for a Service with a selector. ``pods``: (pod, ip, node, ready, terminating)
    candidates. As the endpoints controller: a terminating pod is left out of the addresses
    (kept aside with its readiness for the EndpointSlice), unless publishNotReadyAddresses."""
    groups: dict[tuple, tuple[list, list, list]] = {}
    for pod, ip, node, ready, terminating in sorted(pods, key=lambda x: address_key(x[1])):
        if not all(pod.meta.labels.get(k) == v for k, v in (svc.selector or {}).items()):
            continue
        resolved = []
        for sp in svc.ports:
            port = resolve_target(sp, pod)
            if port is not None:
                resolved.append(EndpointPort(port, sp.protocol, sp.name))
        if svc.ports and not resolved:
            continue
        # Kubernetes publishes the pod's hostname only for the Service named by its subdomain.
        hostname = pod.spec.hostname if pod.spec.subdomain == svc.meta.name else ""
        addr = EndpointAddress(ip, node, pod.meta.name, hostname)
        ready_list, not_ready, ending = groups.setdefault(tuple(resolved), ([], [], []))
        if svc.publish_not_ready:  # every pod, terminating or not, is a ready address
            ready_list.append(addr)
        elif terminating:
            ending.append((addr, ready))
        else:
            (ready_list if ready else not_ready).append(addr)
    subsets = tuple(EndpointSubset(tuple(r), tuple(n), ports, tuple(t)) for ports, (r, n, t) in groups.items())
    return Endpoints(ObjectMeta(svc.meta.name, svc.meta.namespace, dict(svc.meta.labels)), subsets,
                     managed=True)


def slice_for(svc: Service, endpoints: Endpoints, name: str) -> EndpointSlice:
    eps = tuple(SliceEndpoint(a) for s in endpoints.subsets for a in s.addresses) + tuple(
        SliceEndpoint(a, False, False) for s in endpoints.subsets for a in s.not_ready) + tuple(
        SliceEndpoint(a, False, serving, True) for s in endpoints.subsets for a, serving in s.terminating)
    ports = tuple({p: None for s in endpoints.subsets for p in s.ports})
    labels = {**svc.meta.labels, SERVICE_NAME_LABEL: svc.meta.name,
              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    return EndpointSlice(ObjectMeta(name, svc.meta.namespace, labels), eps, ports, managed=True)


def slice_name(svc: Service, rng) -> str:
    return f"{svc.meta.name[:57]}-{naming.random_suffix(rng)}"


Backend = tuple[str, int, str]  # endpoint IP, port, node


def backends(svc: Service, endpoints: Endpoints | None,
             slices: list[EndpointSlice]) -> list[tuple[ServicePort, list[Backend], list[Backend]]]:
    """Per Service port: the ready (ip, port, node) backends and the serving-terminating ones
    (kube-proxy's fallback when none is ready), from Endpoints or else slices."""
    out = []
    for sp in svc.ports:
        found: list[Backend] = []
        ending: list[Backend] = []
        if endpoints is not None:
            for subset in endpoints.subsets:
                port = next((p.port for p in subset.ports if p.name == sp.name and p.protocol == sp.protocol), None)
                if port is None and not subset.ports and isinstance(sp.target(), int):
                    port = sp.target()
                if port is not None:
                    found += [(a.ip, port, a.node) for a in subset.addresses]
                    ending += [(a.ip, port, a.node) for a, serving in subset.terminating if serving]
        else:
            for sl in slices:
                port = next((p.port for p in sl.ports if p.name == sp.name and p.protocol == sp.protocol), None)
                if port is not None:
                    found += [(e.address.ip, port, e.address.node) for e in sl.endpoints if e.ready]
                    ending += [(e.address.ip, port, e.address.node) for e in sl.endpoints
                               if e.serving and e.terminating and not e.ready]
        out.append((sp, sorted(set(found)), sorted(set(ending))))
    return out
