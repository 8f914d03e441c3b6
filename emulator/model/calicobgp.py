"""Calico's BGP objects (BGPConfiguration, BGPPeer) and the sessions they make, as data.

``BGPView`` is what the nodes run: the AS number, each node's route reflector cluster ID, and
every node's BGP sessions as confd writes them into bird.cfg (``Mesh_<ip>``, ``Global_<ip>``,
``Node_<ip>``; passive and ``rr client`` where confd puts them). It travels in the network view;
``cluster/calicobgp.py`` computes it from the stored objects.

``reach`` answers "which nodes learn a route that ``origin`` exports", by BGP's rules over the
sessions that can come up (both ends configured for each other, with the AS each expects): an
origin advertises its routes to every peer; a node passes on what it learned only as a route
reflector, from a client to every peer and from a non-client to its clients, never to a
reflector of its own cluster (the cluster list), and never a route beneath one of its own blocks
(confd's ``calico_aggr`` filter). That is what the nodes' kernels must hold once BIRD converged.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from emulator.errors import SourceRef
from emulator.model.calico import DEFAULT_AS
from emulator.model.meta import ObjectMeta

DEFAULT_CONFIGURATION = "default"  # the one BGPConfiguration k8semu reads (per-node ones: node.<name>)


@dataclass(frozen=True)
class BGPConfiguration:
    """crd.projectcalico.org/v1 BGPConfiguration ``default``: None is Calico's default."""
    meta: ObjectMeta
    as_number: int | None = None  # 64512
    mesh: bool | None = None  # nodeToNodeMeshEnabled: true
    log_severity: str = ""
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class BGPPeer:
    """crd.projectcalico.org/v1 BGPPeer: which nodes (``node``, ``node_selector``, or every one)
    peer with which (``peer_selector``, or the node at ``peer_ip``)."""
    meta: ObjectMeta
    node: str = ""
    node_selector: str = ""
    peer_ip: str = ""
    peer_selector: str = ""
    as_number: int | None = None  # the peer's AS (the cluster's when None)
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Session:
    """One ``protocol bgp`` of one node's BIRD."""
    node: str
    name: str  # Mesh_172_18_0_3, Node_..., Global_...
    peer: str  # the peer node's name
    ip: str  # its address
    as_number: int  # the AS this node expects the peer to speak
    passive: bool = False
    rr_client: bool = False


@dataclass(frozen=True)
class BGPView:
    as_number: int = DEFAULT_AS
    mesh: bool = True
    cluster_ids: tuple[tuple[str, str], ...] = ()  # (node, route reflector cluster ID)
    sessions: tuple[Session, ...] = ()

    @classmethod
    def from_dict(cls, data: dict) -> "BGPView":
        return cls(data["as_number"], data["mesh"], tuple(tuple(c) for c in data["cluster_ids"]),
                   tuple(Session(**s) for s in data["sessions"]))

    def of(self, node: str) -> list[Session]:
        return [s for s in self.sessions if s.node == node]

    def cluster_id(self, node: str) -> str:
        return dict(self.cluster_ids).get(node, "")

    @cached_property
    def _by_pair(self) -> dict[tuple[str, str], Session]:
        return {(s.node, s.peer): s for s in self.sessions}

    @cached_property
    def established(self) -> frozenset[tuple[str, str]]:
        """(node, peer) of every session that can come up: the peer has a session back, each
        end expects the AS the other speaks, and not both ends wait passively."""
        out = set()
        for (node, peer), s in self._by_pair.items():
            back = self._by_pair.get((peer, node))
            if back is not None and s.as_number == back.as_number == self.as_number and not (s.passive and back.passive):
                out.add((node, peer))
        return frozenset(out)

    def reach(self, origin: str, holds: Callable[[str], bool] | None = None,
              gone: frozenset[str] = frozenset()) -> frozenset[str]:
        """The nodes that learn a route ``origin`` exports, over sessions that can come up
        between nodes not ``gone``; ``holds(node)``: the route lies beneath one of that node's
        own blocks, so it does not pass it on."""
        if holds is None and not gone:
            return self._plain.get(origin, frozenset())
        return self._reach(origin, holds or (lambda node: False), gone)

    @cached_property
    def _plain(self) -> dict[str, frozenset[str]]:
        """``reach`` of every origin for routes no node holds, with no node gone: computed once
        per view, as every node's expected routes read it."""
        nodes = {s.node for s in self.sessions} | {s.peer for s in self.sessions}
        return {n: self._reach(n, lambda node: False, frozenset()) for n in nodes}

    def _reach(self, origin: str, holds: Callable[[str], bool], gone: frozenset[str]) -> frozenset[str]:
        if origin in gone:
            return frozenset()
        peers: dict[str, list[str]] = {}
        for node, peer in self.established:
            if node not in gone and peer not in gone:
                peers.setdefault(node, []).append(peer)
        got: set[str] = set()
        seen: set[tuple[str, str, frozenset[str]]] = set()
        queue = deque((p, origin, frozenset()) for p in peers.get(origin, ()))
        while queue:
            node, sender, clusters = queue.popleft()
            if node == origin or (node, sender, clusters) in seen:
                continue
            seen.add((node, sender, clusters))
            cid = self.cluster_id(node)
            if cid and cid in clusters:  # its own cluster ID in the cluster list: dropped
                continue
            got.add(node)
            if not cid or holds(node):
                continue
            from_client = self._by_pair[(node, sender)].rr_client
            for peer in peers.get(node, ()):
                if peer != sender and (from_client or self._by_pair[(node, peer)].rr_client):
                    queue.append((peer, node, clusters | {cid}))
        return frozenset(got)
