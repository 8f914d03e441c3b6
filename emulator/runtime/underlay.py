"""The underlay every data plane starts from, beyond the nodes: which hosts and root-namespace
links it has, and with routed subnets (``spec.network.underlay.routedSubnets``) the router
between them.

The router is a host like the others (a Mininet host, its namespace ``<cluster>__router``, its
veth on the underlay bridge, each checked free, tagged and recorded, so ``down`` and ``cleanup``
remove it as they remove a node). It holds the .1 of every underlay subnet on its one link and
forwards between them without ICMP redirects; it has no other link and no default route, so what
the nodes send beyond the underlay still ends there, sealed.
"""
from __future__ import annotations

import ipaddress

from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.runtime import kernel
from emulator.runtime.proc import ip_batch, run

ROUTER_SYSCTLS = ("net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0",
                  "net.ipv4.conf.eth0.send_redirects=0")


def host_names(cfg: ClusterConfig) -> list[str]:
    """Every host the fabric makes: the nodes, the external hosts, and the underlay router."""
    return ([n.name for n in cfg.nodes] + [h.name for h in cfg.external_hosts]
            + ([naming.ROUTER] if cfg.underlay.routed else []))


def links(cfg: ClusterConfig, scope: naming.Scope) -> list[str]:
    """The root namespace's links of the underlay: its bridge and every host's veth on it."""
    return ([naming.underlay_bridge(scope)] + [naming.underlay_veth(scope, n.index) for n in cfg.nodes]
            + [naming.external_veth(scope, h.index) for h in cfg.external_hosts]
            + ([naming.router_veth(scope)] if cfg.underlay.routed else []))


def build_router(fabric, host_class) -> None:
    """The router, when the underlay has routed subnets (after the underlay bridge is up).
    ``fabric``: the ``runtime.fabric.Fabric`` whose host it is."""
    cfg, scope = fabric.config, fabric.scope
    if not cfg.underlay.routed:
        return
    veth = naming.router_veth(scope)
    host = fabric._host(host_class, naming.ROUTER)
    kernel.create_links(fabric.records, [(veth, f"link add {veth} mtu {cfg.underlay.mtu} type veth peer "
                                                f"name eth0 mtu {cfg.underlay.mtu} netns {host.pid}")])
    ip_batch([f"link set {veth} master {naming.underlay_bridge(scope)} up"])
    netns = naming.node_netns(scope, naming.ROUTER)
    run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *ROUTER_SYSCTLS])
    ip_batch(["link set lo up", "link set eth0 up"]
             + [f"addr add {cfg.underlay.router_ip(s)}/{ipaddress.IPv4Network(s).prefixlen} dev eth0"
                for s in cfg.underlay.subnets], netns=netns)
