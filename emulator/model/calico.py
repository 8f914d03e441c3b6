"""``spec.network.calico``: the Calico-style data plane's settings (issue #14), typed.

The names are Calico's own resources' fields: an IPPool (``cidr``, ``blockSize``,
``vxlanMode``/``ipipMode`` folded into one ``encapsulation`` as the operator's Installation
resource has it, ``natOutgoing``), and a BGPConfiguration (``asNumber``,
``nodeToNodeMeshEnabled``) with route reflectors as BGPPeers select them.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta

# the operator's Installation.spec.calicoNetwork.ipPools[].encapsulation values k8semu runs; IPIP
# and IPIPCrossSubnet need the ipip module (refused with the reason where it is missing)
ENCAPSULATIONS = ("None", "VXLAN", "VXLANCrossSubnet", "IPIP", "IPIPCrossSubnet")
DEFAULT_AS = 64512  # Calico's default BGPConfiguration asNumber
DEFAULT_BLOCK_SIZE = 26
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 20, 32  # Calico's IPv4 blockSize bounds
VXLAN_VNI, VXLAN_PORT = 4096, 4789  # Felix's vxlanVNI and vxlanPort defaults
VXLAN_DEVICE = "vxlan.calico"
FELIX_PROTO = 80  # the routing protocol number Felix's routes carry (``proto 80`` in ``ip route``)
CALICO_GROUP = "crd.projectcalico.org"  # Calico's CRDs (v1), as calico.yaml installs them
CALICO_KINDS = (("IPPool", "ippools"), ("IPAMBlock", "ipamblocks"), ("BlockAffinity", "blockaffinities"),
                ("IPAMHandle", "ipamhandles"), ("IPAMConfig", "ipamconfigs"),
                ("BGPConfiguration", "bgpconfigurations"), ("BGPPeer", "bgppeers"),
                ("FelixConfiguration", "felixconfigurations"), ("ClusterInformation", "clusterinformations"))
CALICO_WRITTEN = frozenset({"IPPool", "BGPConfiguration", "BGPPeer"})  # stored and written through the API; the others are views
RR_CLUSTER_ID = "244.0.0.1"  # the route reflector cluster id Calico's docs use
REFLECTOR_PEER = "peer-with-route-reflectors"  # the BGPPeer of Calico's route reflector docs
RR_ANNOTATION = "projectcalico.org/RouteReflectorClusterID"  # a Node's routeReflectorClusterID, in KDD
RR_LABEL = "route-reflector"  # the label Calico's docs put on reflector nodes (a BGPPeer selects it)
LINK_LOCAL_GATEWAY = "169.254.1.1"  # every pod's next hop, answered by proxy ARP on its cali veth
HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee"  # the MAC Calico gives every host-side cali veth
ALLOWED_USES = ("Workload", "Tunnel")  # an IPPool's default allowedUses
POOLS_ANNOTATION = "cni.projectcalico.org/ipv4pools"  # a pod's (or its namespace's) pools, by name or CIDR


@dataclass(frozen=True)
class Pool:
    """What IPAM and the data plane use of an IP pool (the spec's, or an IPPool written through
    the API). ``disabled``: no new address or block comes from it (what it has handed out stays);
    ``node_selector``: a Calico selector of the nodes whose pods take its addresses by default
    (``!all()``: only pods asking for it, through the ``cni.projectcalico.org/ipv4pools``
    annotation); ``allowed_uses``: Workload (pods), Tunnel (the nodes' VXLAN addresses)."""
    name: str
    cidr: str
    block_size: int = DEFAULT_BLOCK_SIZE
    encapsulation: str = "None"
    nat_outgoing: bool = True
    disabled: bool = False
    node_selector: str = "all()"
    allowed_uses: tuple[str, ...] = ("Workload", "Tunnel")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def vxlan(self) -> bool:
        return self.encapsulation in ("VXLAN", "VXLANCrossSubnet")

    @property
    def cross_subnet(self) -> bool:
        return self.encapsulation.endswith("CrossSubnet")

    def blocks(self) -> list[str]:
        """The pool's blocks, lowest first."""
        return [str(b) for b in self.network.subnets(new_prefix=self.block_size)]


@dataclass(frozen=True)
class IPPool:
    """crd.projectcalico.org/v1 IPPool, stored as the API server stores it (cluster-scoped).
    ``up`` writes one per pool of the spec; ``kubectl apply`` adds, changes (natOutgoing,
    disabled) and deletes them; IPAM and every node follow (``ClusterState.calico_pools``)."""
    meta: ObjectMeta
    pool: Pool
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class BGPConfig:
    as_number: int = DEFAULT_AS
    route_reflectors: tuple[str, ...] = ()  # node names; any: the full mesh is off

    @property
    def mesh(self) -> bool:
        return not self.route_reflectors


@dataclass(frozen=True)
class CalicoConfig:
    pools: tuple[Pool, ...]
    bgp: BGPConfig = BGPConfig()

    @property
    def vxlan(self) -> bool:
        """The pools encapsulate with VXLAN (always, or across subnets): each node has a
        vxlan.calico device and a tunnel address, and Felix, not BIRD, programs the pools' routes."""
        return any(p.vxlan for p in self.pools)

    def pool_of(self, ip: str) -> Pool | None:
        addr = ipaddress.IPv4Address(ip)
        return next((p for p in self.pools if addr in p.network), None)


def tunnel_handle(node: str) -> str:
    """The IPAM handle of a node's VXLAN tunnel address (calico-node's, on its Node object)."""
    return f"vxlan-tunnel-addr-{node}"
