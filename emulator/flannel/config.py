"""What Flannel writes on a node, built from the validated cluster config.

- ``/etc/cni/net.d/10-flannel.conflist``: a kubeadm cluster's conflist names the ``flannel``
  plugin, which reads /run/flannel/subnet.env and hands the ``bridge`` plugin (with host-local
  IPAM) a network config of its own making. Debian ships the reference plugins but not Flannel's,
  so the conflist written here is that delegated config itself: ``cbr0`` on bridge ``cni0``,
  gateway and default gateway, hairpin mode, no IP masquerade (flanneld masquerades), the MTU of
  the backend, host-local with the node's range and a route to the cluster network, then
  ``portmap`` for hostPorts. ``k8semu exec NODE -- cat`` it to read what the bridge plugin read.
- ``/run/flannel/subnet.env``: the lease, as flanneld writes it.
- The flannel.1 VXLAN device (VNI 1, UDP 8472, no learning), with, for every other node, a
  route to its pod range via its flannel.1 address (the range's network address, onlink), a
  permanent neighbour entry for that address and a forwarding entry for its VTEP MAC; or, with
  ``host-gw``, a route to each node's range via the node's own address.
- flanneld's masquerade and forward chains (FLANNEL-POSTRTG, FLANNEL-FWD), rule for rule as
  flannel's pkg/trafficmngr/iptables writes them.

Every value here is an address or number from the validated config; JSON comes from ``json.dumps``
and iptables words are checked by ``kubeproxy.common.word`` all the same.
"""
from __future__ import annotations

import ipaddress
import json

from emulator.kubeproxy.common import word
from emulator.model.cluster import ClusterConfig
from emulator.model.network import FLANNEL_PORT, FLANNEL_VNI
from emulator.model.node import Node

DEVICE = "flannel.1"
VNI = FLANNEL_VNI
UDP_PORT = FLANNEL_PORT
BRIDGE = "cni0"
NETWORK = "cbr0"
CONFLIST = "10-flannel.conflist"
CNI_VERSION = "1.0.0"
KUBE_PROXY_MARK = "0x4000/0x4000"
MULTICAST = "224.0.0.0/4"


def flannel_ip(node: Node) -> str:
    """A node's flannel.1 address: its range's network address (Flannel's VXLAN backend)."""
    return str(ipaddress.IPv4Network(node.pod_cidr).network_address)


def subnet_env(cfg: ClusterConfig, node: Node) -> str:
    """/run/flannel/subnet.env: the cluster network, the node's lease (its gateway address and
    prefix), the MTU pods get and whether flanneld masquerades."""
    prefix = ipaddress.IPv4Network(node.pod_cidr).prefixlen
    return (f"FLANNEL_NETWORK={cfg.pods.subnet}\nFLANNEL_SUBNET={node.gateway_ip}/{prefix}\n"
            f"FLANNEL_MTU={cfg.pod_mtu}\nFLANNEL_IPMASQ=true\n")


def conflist(cfg: ClusterConfig, node: Node, data_dir: str) -> str:
    """The node's CNI network configuration list (see the module's docstring); ``data_dir``:
    where host-local keeps its leases (the node's /var/lib/cni/networks)."""
    bridge = {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": True,
              "hairpinMode": True, "ipMasq": False, "mtu": cfg.pod_mtu,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": node.pod_cidr, "gateway": node.gateway_ip}]],
                       "routes": [{"dst": cfg.pods.subnet}], "dataDir": data_dir}}
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    return json.dumps({"name": NETWORK, "cniVersion": CNI_VERSION, "plugins": [bridge, portmap]}, indent=2) + "\n"


def vxlan_commands(cfg: ClusterConfig, node: Node) -> list[str]:
    """``ip -batch`` lines, in the node's namespace: flannel.1 and the routes and neighbours of
    every other node (``host-gw``: routes via the nodes' addresses only)."""
    peers = [p for p in cfg.nodes if p is not node]
    if cfg.flannel_backend == "host-gw":
        return [f"route add {p.pod_cidr} via {p.ip} dev eth0" for p in peers]
    lines = [f"link add {DEVICE} address {node.vtep_mac} type vxlan id {VNI} local {node.ip} dev eth0 "
             f"dstport {UDP_PORT} nolearning",
             f"link set {DEVICE} mtu {cfg.pod_mtu} up",
             f"addr add {flannel_ip(node)}/32 dev {DEVICE}"]
    for p in peers:
        lines += [f"neigh add {flannel_ip(p)} lladdr {p.vtep_mac} dev {DEVICE} nud permanent",
                  f"route add {p.pod_cidr} via {flannel_ip(p)} dev {DEVICE} onlink"]
    return lines


def fdb_commands(cfg: ClusterConfig, node: Node) -> list[str]:
    """``bridge -batch`` lines: where each other node's VTEP MAC lives (none with host-gw)."""
    if cfg.flannel_backend == "host-gw":
        return []
    return [f"fdb add {p.vtep_mac} dev {DEVICE} dst {p.ip} self permanent" for p in cfg.nodes if p is not node]


def masquerade_rules(cfg: ClusterConfig, node: Node, random_fully: bool = True) -> str:
    """flanneld's chains as ``iptables-restore --noflush`` input: the jumps from POSTROUTING and
    FORWARD go first in their chains (flanneld inserts them), then FLANNEL-POSTRTG (no NAT
    inside the cluster network or for kube-proxy's marked traffic, masquerade to the outside)
    and FLANNEL-FWD (forward what comes from or goes to the cluster network)."""
    net, lease = word(cfg.pods.subnet), word(node.pod_cidr)
    masq = ["-j", "MASQUERADE"] + (["--random-fully"] if random_fully else [])
    comment = ["-m", "comment", "--comment", '"flanneld masq"']
    post = [["-m", "mark", "--mark", KUBE_PROXY_MARK, *comment, "-j", "RETURN"],
            ["-s", net, "-d", net, *comment, "-j", "RETURN"],
            ["-s", net, "!", "-d", MULTICAST, *comment, *masq],
            ["!", "-s", net, "-d", lease, *comment, "-j", "RETURN"],
            ["!", "-s", net, "-d", net, *comment, *masq]]
    fwd_comment = ["-m", "comment", "--comment", '"flanneld forward"']
    lines = ["*nat", ":FLANNEL-POSTRTG - [0:0]", " ".join(["-I", "POSTROUTING", "1", *comment, "-j", "FLANNEL-POSTRTG"])]
    lines += [" ".join(["-A", "FLANNEL-POSTRTG", *rule]) for rule in post] + ["COMMIT"]
    lines += ["*filter", ":FLANNEL-FWD - [0:0]",
              " ".join(["-I", "FORWARD", "1", *fwd_comment, "-j", "FLANNEL-FWD"]),
              " ".join(["-A", "FLANNEL-FWD", "-s", net, *fwd_comment, "-j", "ACCEPT"]),
              " ".join(["-A", "FLANNEL-FWD", "-d", net, *fwd_comment, "-j", "ACCEPT"]), "COMMIT"]
    return "\n".join(lines) + "\n"
