"""The network view of a cluster state: what the controller needs to compute every flow."""
from __future__ import annotations

from emulator.cluster.store import ClusterState
from emulator.model import naming
from emulator.pipeline.view import NetworkView, NodeView, PodView


def network_view(state: ClusterState) -> NetworkView:
    """Scheduled, addressed pods that are not being deleted, and every node."""
    nodes = tuple(NodeView(n.name, n.index, n.ip, n.pod_cidr, n.gateway_ip, n.gateway_mac,
                           n.vtep_mac, n.dpid) for n in state.config.nodes)
    pods = tuple(PodView(r.id, r.obj.meta.namespace, r.obj.meta.name, r.status.node, r.status.ip,
                         naming.mac_from_ip(r.status.ip),
                         naming.pod_ofport(r.status.ip, state.config.node(r.status.node).pod_cidr))
                 for r in state.pods() if r.status.node and r.status.ip and not r.deleting)
    return NetworkView(state.generation, nodes, pods)
