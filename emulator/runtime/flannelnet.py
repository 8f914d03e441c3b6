"""The nodes of a ``cni: flannel`` cluster: Mininet hosts on the underlay bridge, as in the
OpenFlow fabric, but with no switch, gateway port or controller. In each node's namespace, what
flanneld makes (``emulator.flannel.config``): flannel.1 and the other nodes' routes, neighbours
and forwarding entries (or host-gw routes), FLANNEL-POSTRTG/FLANNEL-FWD; and the files a node
holds: /etc/cni/net.d/10-flannel.conflist, /run/flannel/subnet.env and host-local's leases under
/var/lib/cni/networks, kept in the node's folder of the cluster's run directory
(``<run>/nodes/<node>/...``: the machine's own /etc, /run and /var are never written). cni0 is
made by the bridge plugin at the node's first pod, as on a real node.

Everything lives in the nodes' namespaces, which go with the cluster: the VXLAN device's socket,
the bridges, veths and every chain. br_netfilter's ``bridge-nf-call-iptables`` is set per node
(kube-proxy needs it: a reply bridged between two pods of one node must meet conntrack to be
un-DNATed), and nothing of the machine's own namespace changes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from emulator.flannel import config as flannel
from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.model.node import Node
from emulator.runtime import cni, kernel, underlay
from emulator.runtime.proc import ip_batch, run

KERNEL_SYSCTLS = ("net.bridge.bridge-nf-call-iptables=1",)
PLUGIN_DIR = "opt/cni/bin"  # under the cluster's run directory: the plugins k8semu itself provides


def node_root(run_dir: Path, node: str) -> Path:
    """Where a node's own files are (its /etc/cni, /run/flannel, /var/lib/cni)."""
    return run_dir / "nodes" / node


def conflist_path(run_dir: Path, node: str) -> Path:
    return node_root(run_dir, node) / "etc/cni/net.d" / flannel.CONFLIST


def in_node(netns: str, *argv: str) -> list[str]:
    """argv run in a node's network namespace (nsenter: no mount namespace is made)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


def write_files(cfg: ClusterConfig, run_dir: Path, node: Node) -> None:
    """The node's conflist and subnet.env (the runtime reads the conflist back, as a runtime
    reads /etc/cni/net.d: ``conflists``)."""
    root = node_root(run_dir, node.name)
    leases = root / "var/lib/cni/networks"
    for folder in (root / "etc/cni/net.d", root / "run/flannel", leases):
        folder.mkdir(parents=True, exist_ok=True)
    conflist_path(run_dir, node.name).write_text(flannel.conflist(cfg, node, str(leases)))
    (root / "run/flannel/subnet.env").write_text(flannel.subnet_env(cfg, node))


def configure_node(cfg: ClusterConfig, scope: naming.Scope, node: Node) -> None:
    """The node's addresses, then flanneld's device, routes, neighbours, forwarding entries and
    chains.

    Raises:
        RuntimeFailure: the kernel refused (the message names the command).
    """
    netns = naming.node_netns(scope, node.name)
    run(in_node(netns, "sysctl", "-q", "-w", *KERNEL_SYSCTLS))
    router = cfg.underlay.router_ip(node.subnet)
    # a node's default route, as a real node has (its subnet's .1: the underlay router with routed
    # subnets, else nothing: traffic to the outside world ends there, sealed); locally sent packets
    # to a ClusterIP need a route before kube-proxy's OUTPUT rules DNAT them
    ip_batch(["link set lo up", "link set eth0 up", f"addr add {node.ip}/{node.prefixlen} dev eth0",
              f"route add default via {router} dev eth0"]
             + flannel.vxlan_commands(cfg, node), netns=netns, force=False)
    fdb = flannel.fdb_commands(cfg, node)
    if fdb:
        run(["bridge", "-n", netns, "-batch", "-"], input="\n".join(fdb) + "\n")
    run(in_node(netns, "iptables-restore", "-w", "5", "--noflush"), input=flannel.masquerade_rules(cfg, node))


def build_nodes(fabric, host_class) -> None:
    """Make the nodes and the underlay, then each node's Flannel plumbing and files.
    ``fabric``: the ``runtime.fabric.Fabric`` whose hosts these are."""
    build_underlay(fabric, host_class)
    cfg, scope, rec = fabric.config, fabric.scope, fabric.records
    run_dir = rec.path.parent
    for node in cfg.nodes:
        configure_node(cfg, scope, node)
        write_files(cfg, run_dir, node)
    fabric._external_hosts(host_class)


def build_underlay(fabric, host_class) -> None:
    """The nodes (Mininet hosts) on the underlay bridge, names checked free, tagged and recorded:
    what every kernel data plane starts from."""
    cfg, scope, rec = fabric.config, fabric.scope, fabric.records
    netns = [naming.node_netns(scope, n) for n in underlay.host_names(cfg)]
    kernel.check_free(rec, underlay.links(cfg, scope), netns)
    kernel.ensure_netns_dir()
    ul = naming.underlay_bridge(scope)
    kernel.create_links(rec, [(ul, f"link add {ul} type bridge")])
    adds = []
    for node in cfg.nodes:
        host = fabric._host(host_class, node.name)
        veth = naming.underlay_veth(scope, node.index)
        adds.append((veth, f"link add {veth} mtu {cfg.underlay.mtu} type veth peer name eth0 mtu {cfg.underlay.mtu} "
                           f"netns {host.pid}"))
    kernel.create_links(rec, adds)
    ip_batch([f"link set {ul} up"] + [f"link set {naming.underlay_veth(scope, n.index)} master {ul} up"
                                      for n in cfg.nodes])
    underlay.build_router(fabric, host_class)


def plugins(cfg: ClusterConfig, run_dir: Path) -> cni.Plugins:
    """The runtime's CNI: the nodes' conflists, and each node's /var/lib/cni/results as libcni's cache."""
    return cni.Plugins(conflists(cfg, run_dir), results={n.name: node_root(run_dir, n.name) / cni.RESULTS
                                                         for n in cfg.nodes})


def delete_left(run_dir: Path, scope: naming.Scope) -> tuple[int, list[str]]:
    """CNI DEL for every attachment a crashed manager left cached in its nodes' folders (the
    plugins from the cluster's own folder first: cni: calico's are there)."""
    nodes = run_dir / "nodes"
    roots = {d.name: d for d in nodes.iterdir() if d.is_dir()} if nodes.is_dir() else {}
    return cni.delete_cached(roots, lambda node: naming.node_netns(scope, node), cni_path(run_dir))


def cni_path(run_dir: Path) -> str:
    """CNI_PATH: the cluster's own plugins (cni: calico's ``calico`` and ``calico-ipam``), then
    Debian's reference plugins."""
    return os.pathsep.join([str(run_dir / PLUGIN_DIR), cni.CNI_PATH])


def conflists(cfg: ClusterConfig, run_dir: Path) -> dict[str, dict]:
    """Every node's conflist as the runtime reads it (from the node's file, as a runtime does)."""
    out = {}
    for node in cfg.nodes:
        path = conflist_path(run_dir, node.name)
        if os.path.exists(path):
            out[node.name] = json.loads(path.read_text())
    return out
