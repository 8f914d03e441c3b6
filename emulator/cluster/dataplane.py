"""The network view of a cluster state: what the controller needs to compute every flow.

Every number in it comes from the cluster's allocators (``cluster.ids``) or its scope (datapath
ids and conntrack zones of the cluster's slot), never from arithmetic on record ids.
"""
from __future__ import annotations

import ipaddress

from emulator.cluster import calicobgp, services
from emulator.cluster.policies import compile_policies
from emulator.cluster.store import ClusterState
from emulator.model import naming
from emulator.model.calico import tunnel_handle
from emulator.model.network import in_network
from emulator.model.netview import EndpointView, NetworkView, NodeView, PodView, ServicePortView, subgroups_needed


# kube-proxy's label selector: a Service carrying either label belongs to another proxy (or to none)
PROXY_SKIP_LABELS = ("service.kubernetes.io/service-proxy-name", "service.kubernetes.io/headless")


def service_views(state: ClusterState) -> tuple[ServicePortView, ...]:
    out = []
    ports, groups = state.ids.service_ports, state.ids.groups
    by_service: dict[tuple[str, str], list] = {}  # (namespace, Service) -> its EndpointSlices, found once
    for r in state.list("EndpointSlice"):
        name = r.obj.meta.labels.get(services.SERVICE_NAME_LABEL)
        if name:
            by_service.setdefault((r.obj.meta.namespace, name), []).append(r.obj)
    pod_net = ipaddress.IPv4Network(state.config.pods.subnet)

    def endpoint(ip: str, port: int, node: str) -> EndpointView:
        return EndpointView(ip, port, node, in_network(ip, pod_net))

    for rec in sorted(state.list("Service"), key=lambda r: r.id):
        svc = rec.obj
        alloc = state.alloc.by_service.get(svc.key)
        if alloc is None or not alloc.cluster_ip:
            continue
        if any(label in svc.meta.labels for label in PROXY_SKIP_LABELS):
            continue
        ns = svc.meta.namespace
        eps = state.get("Endpoints", ns, svc.meta.name)
        slices = by_service.get((ns, svc.meta.name), [])
        for i, (sp, ready, ending) in enumerate(services.backends(svc, eps.obj if eps else None, slices)):
            port_id = ports.get((rec.uid, sp.protocol, sp.port))
            # kube-proxy: the ready endpoints, or the serving-terminating ones when none is ready;
            # a node-local policy falls back the same way per node (``ServicePortView.terminating``)
            backends = ready or ending
            local = max((max(sum(1 for _, _, n in ready if n == node.name),
                              sum(1 for _, _, n in ending if n == node.name)) for node in state.config.nodes),
                        default=0)
            chained = subgroups_needed(len(backends)) + subgroups_needed(local)
            out.append(ServicePortView(
                port_id, ns, svc.meta.name, sp.name, sp.protocol,
                alloc.cluster_ip, sp.port, alloc.node_ports[i] if i < len(alloc.node_ports) else 0,
                alloc.lb_ip, svc.affinity_timeout if svc.session_affinity == "ClientIP" else 0,
                svc.external_traffic_policy == "Local", svc.internal_traffic_policy == "Local",
                tuple(endpoint(ip, port, node) for ip, port, node in backends),
                (groups.get((port_id, "all")), groups.get((port_id, "local"))),
                tuple(groups.get((port_id, "chain", i)) for i in range(chained)),
                tuple(endpoint(ip, port, node) for ip, port, node in ending), svc.external_ips,
                alloc.health_check_node_port, svc.source_networks))
    live = {ports.by_id[s.id] for s in out}
    ports.retain(live)
    groups.retain({(s.id, kind) for s in out for kind in ("all", "local")}
                  | {(s.id, "chain", i) for s in out for i in range(len(s.subgroups))})
    return tuple(out)


def node_views(state: ClusterState) -> tuple[NodeView, ...]:
    scope = state.scope
    return tuple(NodeView(n.name, n.index, n.ip, n.pod_cidr, n.gateway_ip, n.gateway_mac, n.vtep_mac,
                          naming.datapath_id(scope, n.index), naming.ct_zone(scope.slot, n.index))
                 for n in state.config.nodes)


def network_view(state: ClusterState, generation: int | None = None) -> NetworkView:
    """Scheduled, addressed pods (terminating ones too: their connections go on until the
    kubelet has stopped them), every node, every Service port. A ``hostNetwork`` pod is not a
    pod of the switch (no port, no flows, no portmap rules: it binds the node's ports itself);
    as a Service endpoint it is its node's address."""
    pods = tuple(PodView(r.id, r.obj.meta.namespace, r.obj.meta.name, r.status.node, r.status.ip,
                         naming.mac_from_ip(r.status.ip),
                         0 if state.calico_ipam else naming.pod_ofport(r.status.ip, state.config.node(r.status.node).pod_cidr),
                         r.obj.spec.host_ports)
                 for r in state.pods() if r.status.node and r.status.ip and not r.obj.spec.host_network
                 and not r.status.released)
    ipam = state.calico_ipam
    blocks = tuple((b.cidr, b.affinity) for b in ipam.blocks.values()) if ipam else ()
    tunnels = tuple((n.name, ipam.handles[tunnel_handle(n.name)]) for n in state.config.nodes
                    if tunnel_handle(n.name) in ipam.handles) if ipam else ()
    return NetworkView(state.generation if generation is None else generation, node_views(state), pods,
                       service_views(state), compile_policies(state), blocks, tunnels,
                       state.calico_pools() if ipam else (), calicobgp.view(state) if ipam else None)
