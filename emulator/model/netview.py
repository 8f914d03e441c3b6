"""The slice of cluster state that the data plane depends on, as a JSON-friendly value.

The manager writes it to the run directory; the controller reads it and derives every flow from
it (and from nothing else), so the flows of a given cluster state can be computed, diffed and
golden-tested without a switch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

from emulator.model.calico import Pool
from emulator.model.calicobgp import BGPView


GROUP_CHUNK = 256  # endpoints per OpenFlow group: a message holds at most 64 KiB (about 800 buckets)


def _fields(value: object) -> dict:
    """A view dataclass as the dict json writes (its tuples json writes as lists itself)."""
    return {name: getattr(value, name) for name in value.__dataclass_fields__}  # type: ignore[attr-defined]


def subgroups_needed(endpoints: int) -> int:
    """Chained groups a Service port needs for this many endpoints (0: one group holds them)."""
    return 0 if endpoints <= GROUP_CHUNK else -(-endpoints // GROUP_CHUNK)


@dataclass(frozen=True)
class NodeView:
    name: str
    index: int
    ip: str
    pod_cidr: str
    gateway_ip: str
    gateway_mac: str
    vtep_mac: str
    dpid: int
    zone: int  # conntrack zone of pod traffic; zone + 1 is the hairpin SNAT zone

    @property
    def snat_zone(self) -> int:
        return self.zone + 1


@dataclass(frozen=True)
class PodView:
    id: int
    namespace: str
    name: str
    node: str
    ip: str
    mac: str
    ofport: int
    # (protocol, hostIP, hostPort, containerPort): the node forwards these to the pod (portmap)
    host_ports: tuple[tuple[str, str, int, int], ...] = ()


@dataclass(frozen=True)
class EndpointView:
    ip: str
    port: int
    node: str
    # False for an address outside the pod network (a hostNetwork pod's node address, a manual
    # Endpoints address): reached from the node's gateway, it needs the gateway hairpin
    pod_network: bool = True


@dataclass(frozen=True)
class ServicePortView:
    """One port of one Service, with everything the load-balancing flows need."""
    id: int  # unique per Service port (an allocator's); names its cookies
    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP | UDP | SCTP
    cluster_ip: str  # "" for headless / ExternalName: no flows
    port: int
    node_port: int = 0
    lb_ip: str = ""
    affinity_timeout: int = 0  # 0: no session affinity
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local
    endpoints: tuple[EndpointView, ...] = ()
    groups: tuple[int, int] = (0, 0)  # allocated group ids: all endpoints, node-local endpoints
    subgroups: tuple[int, ...] = ()  # allocated ids for chained groups when endpoints exceed one message
    # serving-terminating endpoints: a node-local policy uses the node's when it has no ready one
    terminating: tuple[EndpointView, ...] = ()
    external_ips: tuple[str, ...] = ()  # spec.externalIPs: the nodes DNAT them to the cluster IP
    health_check_node_port: int = 0  # served on every node: the node's ready local endpoints
    source_ranges: tuple[str, ...] = ()  # loadBalancerSourceRanges: only these reach lb_ip (empty: anyone)

    def ready_on(self, node: str) -> set[str]:
        """Addresses of this port's ready endpoints on ``node`` (the serving-terminating
        fallback does not count: kube-proxy's LocalReadyEndpoints)."""
        ending = set(self.terminating)
        return {e.ip for e in self.endpoints if e.node == node and e not in ending}

    def external_destinations(self, node_ip: str) -> list[tuple[str, int]]:
        """(address, port) a client outside the cluster reaches this Service port by on a node:
        the node's NodePort, the LoadBalancer address, the external IPs."""
        if not self.node_port:
            return [(ip, self.port) for ip in self.external_ips]
        return [(node_ip, self.node_port)] + [(ip, self.port) for ip in (self.lb_ip, *self.external_ips) if ip]

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name or self.port}"


@dataclass(frozen=True)
class RuleView:
    """One NetworkPolicy rule, as address sets (see ``cluster.policies``)."""
    id: int
    owner: str  # "ns/policy ingress[0]"
    direction: str  # Ingress | Egress
    applied: tuple[tuple[str, str], ...]  # (pod IP, node) the rule protects
    peers: tuple[str, ...]  # CIDRs the rule admits ("0.0.0.0/0": anyone)
    ports: tuple[tuple[str, int | None, int | None], ...] = ()  # (protocol, port, endPort); empty: all
    policy: str = ""  # "ns/policy": the NetworkPolicy the rule is part of


@dataclass(frozen=True)
class Selection:
    """The pods one NetworkPolicy selects in one direction, rules or none (a policy without
    rules isolates all the same): Felix's per-pod chains call each selecting policy's chain."""
    policy: str  # "ns/policy"
    direction: str  # Ingress | Egress
    pods: tuple[str, ...]  # their IPs


@dataclass(frozen=True)
class PolicyView:
    rules: tuple[RuleView, ...] = ()
    isolated_ingress: tuple[str, ...] = ()  # pod IPs selected by an Ingress policy
    isolated_egress: tuple[str, ...] = ()
    selections: tuple[Selection, ...] = ()


@dataclass(frozen=True)
class NetworkView:
    generation: int
    nodes: tuple[NodeView, ...] = ()
    pods: tuple[PodView, ...] = field(default=())
    services: tuple[ServicePortView, ...] = ()
    policies: PolicyView = field(default_factory=PolicyView)
    blocks: tuple[tuple[str, str], ...] = ()  # cni: calico: (block CIDR, the node it is affine to), in claim order
    tunnels: tuple[tuple[str, str], ...] = ()  # cni: calico with VXLAN: (node, its vxlan.calico address)
    pools: tuple[Pool, ...] = ()  # cni: calico: the IP pools as the IPPools say now (BIRD's filters, NAT, routes)
    bgp: BGPView | None = None  # cni: calico: every node's BGP sessions, as BGPConfiguration and BGPPeers say

    def to_json(self) -> str:
        """Compact and sorted: without ``indent`` json uses its C encoder, and with the fields
        handed over as they are (``default``) rather than deep-copied by ``asdict``, a view of
        1,000 Services is written in a tenth of the time (``python -m json.tool`` reads it)."""
        return json.dumps(self, default=_fields, sort_keys=True, separators=(",", ":"))

    @cached_property
    def host_port_pods(self) -> tuple[PodView, ...]:
        """The pods with a hostPort, found once per view (each node's rules read them)."""
        return tuple(p for p in self.pods if p.host_ports)

    @classmethod
    def from_json(cls, text: str) -> "NetworkView":
        data = json.loads(text)
        services = tuple(ServicePortView(**{**s, "endpoints": tuple(EndpointView(**e) for e in s["endpoints"]),
                                            "terminating": tuple(EndpointView(**e) for e in s.get("terminating", ())),
                                            "groups": tuple(s["groups"]), "subgroups": tuple(s.get("subgroups", ())),
                                            "external_ips": tuple(s.get("external_ips", ())),
                                            "source_ranges": tuple(s.get("source_ranges", ()))})
                         for s in data.get("services", ()))
        pol = data.get("policies") or {}
        policies = PolicyView(
            tuple(RuleView(r["id"], r["owner"], r["direction"], tuple(tuple(a) for a in r["applied"]),
                           tuple(r["peers"]), tuple(tuple(p) for p in r["ports"]), r.get("policy", ""))
                  for r in pol.get("rules", ())),
            tuple(pol.get("isolated_ingress", ())), tuple(pol.get("isolated_egress", ())),
            tuple(Selection(s["policy"], s["direction"], tuple(s["pods"])) for s in pol.get("selections", ())))
        return cls(data["generation"], tuple(NodeView(**n) for n in data["nodes"]),
                   tuple(PodView(**{**p, "host_ports": tuple(tuple(h) for h in p.get("host_ports", ()))})
                         for p in data["pods"]), services, policies,
                   tuple(tuple(b) for b in data.get("blocks", ())), tuple(tuple(t) for t in data.get("tunnels", ())),
                   tuple(Pool(**{**p, "allowed_uses": tuple(p.get("allowed_uses", ()))}) for p in data.get("pools", ())),
                   BGPView.from_dict(data["bgp"]) if data.get("bgp") else None)

    def node(self, name: str) -> NodeView:
        return next(n for n in self.nodes if n.name == name)

    def node_by_dpid(self, dpid: int) -> NodeView | None:
        return next((n for n in self.nodes if n.dpid == dpid), None)
