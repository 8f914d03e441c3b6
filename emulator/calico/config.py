"""What calico-node and its installer write on a node of a ``cni: calico`` cluster, from the
validated cluster config and the IPAM's blocks:

- ``/etc/cni/net.d/10-calico.conflist``: the ``k8s-pod-network`` list as Calico's manifest
  installs it: the ``calico`` plugin (with ``calico-ipam`` for IPAM, the pool's MTU) then
  ``portmap`` for hostPorts (``snat``, as Calico's list has it).
- Felix's outgoing NAT: the ipsets ``cali40masq-ipam-pools`` (pools with natOutgoing) and
  ``cali40all-ipam-pools`` and the chains ``cali-POSTROUTING`` → ``cali-nat-outgoing``
  masquerading pod traffic that leaves every pool.
- The routes a node's kernel must hold once BIRD has converged (``expected_routes``): each other
  node's blocks via that node, each address borrowed onto another node as a /32 via it (where
  BGP carries it: ``receives``), and a blackhole for each of its own blocks.

Every value is an address, CIDR or number from the validated config; iptables words go through
``kubeproxy.common.word`` all the same.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, replace

from emulator.kubeproxy.common import word
from emulator.model.calico import FELIX_PROTO, VXLAN_DEVICE, VXLAN_PORT, VXLAN_VNI, CalicoConfig
from emulator.model.calicobgp import BGPView
from emulator.model.cluster import ClusterConfig
from emulator.model.netview import NetworkView
from emulator.model.node import Node

CONFLIST = "10-calico.conflist"
NETWORK = "k8s-pod-network"
CNI_VERSION = "1.0.0"
MASQ_SET, ALL_SET = "cali40masq-ipam-pools", "cali40all-ipam-pools"


def conflist(cfg: ClusterConfig, node: Node) -> str:
    calico = {"type": "calico", "log_level": "info", "datastore_type": "kubernetes", "nodename": node.name,
              "mtu": cfg.pod_mtu, "ipam": {"type": "calico-ipam"}, "policy": {"type": "k8s"}}
    portmap = {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}}
    return json.dumps({"name": NETWORK, "cniVersion": CNI_VERSION, "plugins": [calico, portmap]}, indent=2) + "\n"


def nat_outgoing(calico: CalicoConfig) -> tuple[str, str]:
    """(``ipset restore`` input, ``iptables-restore --noflush`` input) for Felix's outgoing NAT."""
    sets = [f"create {MASQ_SET} hash:net family inet -exist", f"flush {MASQ_SET}",
            f"create {ALL_SET} hash:net family inet -exist", f"flush {ALL_SET}"]
    for pool in calico.pools:
        sets.append(f"add {ALL_SET} {word(pool.cidr)} -exist")
        if pool.nat_outgoing:
            sets.append(f"add {MASQ_SET} {word(pool.cidr)} -exist")
    rules = ["*nat", ":cali-POSTROUTING - [0:0]", ":cali-nat-outgoing - [0:0]",
             '-I POSTROUTING 1 -m comment --comment "cali:O3lYWMrLQYEMJtB5" -j cali-POSTROUTING',
             "-A cali-POSTROUTING -j cali-nat-outgoing",
             f'-A cali-nat-outgoing -m comment --comment "cali:flqWnvo8yq4ULQLa" -m set --match-set {MASQ_SET} src '
             f"-m set ! --match-set {ALL_SET} dst -j MASQUERADE --random-fully", "COMMIT"]
    return "\n".join(sets) + "\n", "\n".join(rules) + "\n"


def effective(cfg: ClusterConfig, view: NetworkView) -> CalicoConfig:
    """The cluster's Calico settings with the IP pools as the view has them (IPPools written
    through the API since ``up``); the spec's until the first view."""
    return replace(cfg.calico, pools=view.pools) if view.pools else cfg.calico


def _in_pools(calico_cfg: CalicoConfig, blocks: list[tuple[ipaddress.IPv4Network, str]]) -> list:
    """The blocks inside a pool: a deleted pool's blocks (still holding addresses) are exported
    by no BIRD and routed by no Felix, as on Calico, so no node is waited on for them."""
    nets = [p.network for p in calico_cfg.pools]
    return [(net, owner) for net, owner in blocks if any(net.subnet_of(p) for p in nets)]


def nat_sets_update(calico: CalicoConfig) -> str:
    """``ipset restore`` input giving Felix's two pool sets the pools as they are now, each
    filled aside and swapped in at once (the MASQUERADE rule never sees an empty set)."""
    lines = []
    for name, cidrs in ((MASQ_SET, [p.cidr for p in calico.pools if p.nat_outgoing]),
                        (ALL_SET, [p.cidr for p in calico.pools])):
        fresh = f"{name}-new"
        lines += [f"create {fresh} hash:net family inet -exist", f"flush {fresh}"]
        lines += [f"add {fresh} {word(c)} -exist" for c in cidrs]
        lines += [f"swap {fresh} {name}", f"destroy {fresh}"]
    return "\n".join(lines) + "\n"


def blocks_of(view: NetworkView, node: str) -> list[str]:
    """The blocks affine to ``node``: BIRD's static blackholes, exported to its peers (with VXLAN
    pools not put in the kernel, where Felix's blackholes are)."""
    return [cidr for cidr, owner in view.blocks if owner == node]


def expected_routes(cfg: ClusterConfig, view: NetworkView, node: str,
                    gone: frozenset[str] = frozenset()) -> dict[str, str]:
    """destination -> next hop (a node's address, or "blackhole") the node's kernel holds once
    BIRD converged: its own blocks' blackholes; each other node's blocks, and each address
    borrowed onto another node as a /32, where BGP brings them over the sessions that come up
    (``BGPView.reach``: the mesh, or a reflector passing on; a reflector owning the block keeps
    a borrowed /32 to itself, as its ``calico_aggr`` filter does; a node left without the /32
    reaches the address through the block's owner). With ``gone`` nodes, what still arrives
    without them."""
    if cfg.calico.vxlan:  # BIRD programs nothing of a VXLAN pool (``calico_kernel_programming``)
        return {}
    bgp = view.bgp if view.bgp is not None else BGPView()
    ips = {n.name: n.ip for n in cfg.nodes}
    out = {}
    blocks = _in_pools(effective(cfg, view), [(ipaddress.IPv4Network(cidr), owner) for cidr, owner in view.blocks])
    for net, owner in blocks:
        if owner == node:
            out[str(net)] = "blackhole"
        elif node in bgp.reach(owner, gone=gone):
            out[str(net)] = ips.get(owner, "")
    for pod in view.pods:
        if pod.node == node or not pod.ip:
            continue
        addr = ipaddress.IPv4Address(pod.ip)
        home = next((owner for net, owner in blocks if addr in net), None)
        if home is None or home == pod.node:
            continue
        owners = {owner for net, owner in blocks if addr in net}
        if node in bgp.reach(pod.node, lambda x: x in owners, gone):
            out[f"{pod.ip}/32"] = ips.get(pod.node, "")
    return out


@dataclass(frozen=True)
class FelixState:
    """What Felix programs on a node for VXLAN pools: routes (destination -> ``ip route``
    target), neighbour entries (tunnel address -> MAC) and forwarding entries (MAC -> node
    address) on vxlan.calico."""
    routes: dict[str, str]
    neighbours: dict[str, str]
    fdb: dict[str, str]


def felix_state(cfg: ClusterConfig, view: NetworkView, node: str) -> FelixState:
    """Felix's VXLAN manager and route table for ``node`` (pools with VXLAN encapsulation, where
    BIRD programs nothing): a blackhole for each of its blocks; each other node's blocks, and each
    address borrowed onto another node as a /32, via that node's tunnel address on vxlan.calico
    (``VXLANCrossSubnet``: a node of this node's underlay subnet via its address on eth0, only a
    node behind the router through the tunnel); the other nodes' tunnel addresses as permanent
    neighbours and their VTEP MACs in the FDB."""
    tunnels = dict(view.tunnels)
    by_name = {n.name: n for n in cfg.nodes}
    me = by_name[node]
    calico_cfg = effective(cfg, view)

    def via(owner: str, net: ipaddress.IPv4Network) -> str:
        pool = calico_cfg.pool_of(str(net.network_address))
        if pool is not None and pool.cross_subnet and by_name[owner].same_subnet(me):
            return f"via {_address(by_name[owner].ip)} dev eth0 onlink"
        return f"via {_address(tunnels[owner])} dev {VXLAN_DEVICE} onlink"
    routes: dict[str, str] = {}
    blocks = _in_pools(calico_cfg, [(ipaddress.IPv4Network(cidr), owner) for cidr, owner in view.blocks])
    for net, owner in blocks:
        if owner == node:
            routes[str(net)] = "blackhole"
        elif owner in tunnels:
            routes[str(net)] = via(owner, net)
    for pod in view.pods:
        if pod.node == node or not pod.ip or pod.node not in tunnels:
            continue
        addr = ipaddress.IPv4Address(pod.ip)
        home = next((owner for net, owner in blocks if addr in net), None)
        if home is not None and home != pod.node:
            routes[f"{addr}/32"] = via(pod.node, ipaddress.IPv4Network(f"{addr}/32"))
    others = [n for n in cfg.nodes if n.name != node and n.name in tunnels]
    return FelixState(routes, {_address(tunnels[n.name]): n.vtep_mac for n in others},
                      {n.vtep_mac: _address(n.ip) for n in others})


def vxlan_device(cfg: ClusterConfig, node: Node, tunnel: str) -> list[str]:
    """``ip -batch`` lines making vxlan.calico as Felix makes it: VNI 4096, UDP 4789, the node's
    address as the local end, no learning, the pool's MTU, the tunnel address as a /32."""
    return [f"link add {VXLAN_DEVICE} address {node.vtep_mac} type vxlan id {VXLAN_VNI} local {_address(node.ip)} "
            f"dev eth0 dstport {VXLAN_PORT} nolearning",
            f"link set {VXLAN_DEVICE} mtu {int(cfg.pod_mtu)} up", f"addr add {_address(tunnel)}/32 dev {VXLAN_DEVICE}"]


def felix_changes(old: FelixState | None, new: FelixState) -> tuple[list[str], list[str]]:
    """(``ip -batch`` lines, ``bridge -batch`` lines) taking a node from ``old`` to ``new``:
    neighbours and forwarding entries before the routes that use them; what went, removed."""
    old = old or FelixState({}, {}, {})
    ip = [f"neigh replace {a} lladdr {mac} dev {VXLAN_DEVICE} nud permanent" for a, mac in sorted(new.neighbours.items())
          if old.neighbours.get(a) != mac]

    def route(verb: str, dst: str, target: str) -> str:
        if target == "blackhole":
            return f"route {verb} blackhole {_cidr(dst)} proto {FELIX_PROTO}"
        return f"route {verb} {_cidr(dst)}{f' {target}' if verb == 'replace' else ''} proto {FELIX_PROTO}"
    ip += [route("replace", dst, target) for dst, target in sorted(new.routes.items()) if old.routes.get(dst) != target]
    ip += [route("del", dst, target) for dst, target in sorted(old.routes.items()) if dst not in new.routes]
    ip += [f"neigh del {a} dev {VXLAN_DEVICE}" for a in sorted(old.neighbours) if a not in new.neighbours]
    fdb = [f"fdb replace {mac} dev {VXLAN_DEVICE} dst {dst} self permanent" for mac, dst in sorted(new.fdb.items())
           if old.fdb.get(mac) != dst]
    fdb += [f"fdb del {mac} dev {VXLAN_DEVICE} dst {old.fdb[mac]} self" for mac in sorted(old.fdb) if mac not in new.fdb]
    return ip, fdb


def _address(value: str) -> str:
    return str(ipaddress.IPv4Address(value))


def _cidr(value: str) -> str:
    return str(ipaddress.IPv4Network(value))
