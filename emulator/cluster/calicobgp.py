"""Calico's BGPConfiguration and BGPPeers on a ``cni: calico`` cluster: written at ``up`` from
the spec's ``network.calico.bgp``, then through the API; turned into every node's sessions as
calico-node's confd turns them (``confd/pkg/backends/calico/client.go``'s ``updatePeersV1`` and
bird.cfg.template):

- the node-to-node mesh (``nodeToNodeMeshEnabled``, on by default): ``Mesh_<ip>`` from each
  node that is not a route reflector to each other such node, passive towards a higher address;
- BGPPeers with neither ``node`` nor ``nodeSelector`` are global: every node peers
  (``Global_<ip>``) with the nodes their ``peerSelector`` selects, or the address ``peerIP``;
- the others are node-specific (``Node_<ip>``) for the nodes they select; then the reverse
  peerings confd fills in for symmetry: the selected peers peer back with those nodes. The
  first peering for a (node, address) wins, a global one over a node-specific one;
- a session gets ``rr client`` when this node has a route reflector cluster ID, the peer
  speaks its AS, and the peer's cluster ID differs.

A peering to an address a mesh session already covers is left out (BIRD would run two
sessions to one neighbour, and one of them never comes up). A node's route reflector cluster
ID is the spec's (``routeReflectors``: Calico's docs' 244.0.0.1).
"""
from __future__ import annotations

import ipaddress

from emulator.cluster.store import ClusterState
from emulator.errors import Problem
from emulator.model import calicoselector
from emulator.model.calico import DEFAULT_AS, RR_ANNOTATION
from emulator.model.calicobgp import DEFAULT_CONFIGURATION, BGPConfiguration, BGPPeer, BGPView, Session


def settings(state: ClusterState) -> tuple[int, bool]:
    """(AS number, node-to-node mesh on) as BGPConfiguration ``default`` says (Calico's defaults
    without one)."""
    rec = state.get("BGPConfiguration", "", DEFAULT_CONFIGURATION)
    conf = rec.obj if rec is not None else None
    asn = conf.as_number if conf is not None and conf.as_number is not None else DEFAULT_AS
    return asn, conf.mesh if conf is not None and conf.mesh is not None else True


def cluster_ids(state: ClusterState) -> dict[str, str]:
    """node -> its route reflector cluster ID: the annotation calicoctl writes (``kubectl
    annotate node``; written at ``up`` for the spec's reflectors)."""
    return {name: written[RR_ANNOTATION] for name, written in state.node_annotations.items()
            if written.get(RR_ANNOTATION)}


def _protocol_id(ip: str) -> str:
    return str(ipaddress.IPv4Address(ip)).replace(".", "_")


def view(state: ClusterState) -> BGPView:
    """Every node's sessions (see the module's docstring), computed again only when the BGP
    objects changed (a network view is computed for every change of the cluster)."""
    peers = sorted(state.list("BGPPeer"), key=lambda r: r.obj.meta.name)
    key = (settings(state), [r.obj for r in peers], {n: dict(v) for n, v in state.node_labels.items()},
           cluster_ids(state))
    if state.bgp_view is not None and state.bgp_view[0] == key:
        return state.bgp_view[1]
    result = _compute(state, [r.obj for r in peers])
    state.bgp_view = (key, result)
    return result


def _compute(state: ClusterState, peers: list[BGPPeer]) -> BGPView:
    asn, mesh = settings(state)
    nodes = sorted(state.current_nodes(), key=lambda n: n.name)  # confd reads /host/<name> in name order
    ip = {n.name: n.ip for n in nodes}
    by_ip = {n.ip: n.name for n in nodes}
    labels = {n.name: n.all_labels() for n in nodes}
    cids = cluster_ids(state)

    def selected(selector: str) -> list[str]:
        match = calicoselector.parse(selector)
        return [n.name for n in nodes if match(labels[n.name])]

    def targets(p: BGPPeer) -> list[tuple[str, int]]:
        if p.peer_selector:
            return [(ip[n], asn) for n in selected(p.peer_selector)]
        return [(p.peer_ip, p.as_number or asn)]

    global_peers: dict[str, int] = {}
    node_peers: dict[tuple[str, str], int] = {}
    for p in peers:  # global peerings first: a node-specific one to the same address yields to them
        if not p.node and not p.node_selector:
            for addr, peer_as in targets(p):
                global_peers.setdefault(addr, peer_as)
    for p in peers:
        if p.node or p.node_selector:
            local = selected(p.node_selector) if p.node_selector else [p.node] if p.node in ip else []
            for addr, peer_as in targets(p):
                for node in local:
                    if addr not in global_peers:
                        node_peers.setdefault((node, addr), peer_as)
    for p in peers:  # the reverse peerings, for symmetry between Calico nodes
        if p.peer_selector:
            local = selected(p.peer_selector)
        else:
            local = [n for n in ip if ip[n] == p.peer_ip and (p.as_number or asn) == asn]
        back = selected(p.node_selector) if p.node_selector else [p.node] if p.node else [n.name for n in nodes]
        for node in local:
            for other in back:
                if other in ip and ip[other] not in global_peers:
                    node_peers.setdefault((node, ip[other]), asn)
    sessions = []
    for node in nodes:
        me, cid = node.name, cids.get(node.name, "")
        mine: list[Session] = []
        if mesh and not cid:
            mine += [Session(me, f"Mesh_{_protocol_id(o.ip)}", o.name, o.ip, asn, passive=o.ip > node.ip)
                     for o in nodes if o.name != me and not cids.get(o.name)]
        covered = {s.ip for s in mine}
        for prefix, entries in (("Global", sorted(global_peers.items())),
                                ("Node", sorted((a, s) for (n, a), s in node_peers.items() if n == me))):
            for addr, peer_as in entries:
                if addr == node.ip or addr in covered:
                    continue
                covered.add(addr)
                peer = by_ip.get(addr, "")
                client = peer_as == asn and bool(cid) and cids.get(peer, "") != cid
                mine.append(Session(me, f"{prefix}_{_protocol_id(addr)}", peer, addr, peer_as, rr_client=client))
        sessions += mine
    return BGPView(asn, mesh, tuple(sorted(cids.items())), tuple(sessions))


def check(state: ClusterState, objects: list) -> list[Problem]:
    """What the cluster refuses of the BGP objects among ``objects``."""
    mine = [o for o in objects if isinstance(o, (BGPConfiguration, BGPPeer))]
    if not mine:
        return []
    kind = {BGPConfiguration: "BGPConfiguration", BGPPeer: "BGPPeer"}
    if state.config.calico is None:
        return [Problem(o.source, "kind", f"{kind[type(o)]} {o.meta.name}: Calico's BGP objects need "
                        f"spec.network.cni: calico (this cluster runs {state.config.cni})") for o in mine]
    problems = []
    nodes = {n.name for n in state.config.nodes}
    subnets = [ipaddress.IPv4Network(s) for s in state.config.underlay.subnets]
    for o in mine:
        def fail(field: str, message: str) -> None:
            problems.append(Problem(o.source, field, f"{kind[type(o)]} {o.meta.name}: {message}"))
        if isinstance(o, BGPConfiguration):
            if o.meta.name != DEFAULT_CONFIGURATION:
                fail("metadata.name", "k8semu reads the BGPConfiguration named default only (per-node "
                                      "node.<name> configurations are not emulated)")
            continue
        if o.node and o.node not in nodes:
            fail("spec.node", f"{o.node!r} is not a node of this cluster")
        if o.peer_ip and not any(ipaddress.IPv4Address(o.peer_ip) in s for s in subnets):
            fail("spec.peerIP", f"{o.peer_ip} is outside the underlay ({', '.join(map(str, subnets))}), "
                                "which has no route beyond its subnets")
    return problems
