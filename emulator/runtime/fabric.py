"""The cluster fabric: nodes as Mininet hosts on an underlay bridge, each with its own
Open vSwitch bridge, gateway and VXLAN device.

::

      root namespace                           node namespace (Mininet host, netns "<cluster>_worker-1")
      k8s0-ul (Linux bridge) --k8s0-u1 ======= eth0 172.18.0.3/24
      k8s0-br1 (OVS) --port 2-- k8s0-g1 ====== k8semu-gw0 10.244.1.1/24 (the pods' gateway)
             |--port 1-- k8s0-x1 (VXLAN: created in the node, moved out; its UDP socket stays
             |                    in the node, so encapsulated packets leave by the node's eth0)
             |--port 100+n-- k8s0-<hash> ====== pod eth0 (its own namespace)

The underlay bridge has no address, no IPv6 and nothing routes from it: the emulation is
sealed. Every name is checked free before anything is made, and everything made carries the
run's tag (``records``). Before building, ``preflight`` refuses a spec whose subnets overlap an
address or route of this machine (an underlay equal to the LAN would give a node the machine's
own address).
"""
from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Callable

from emulator.errors import RuntimeFailure
from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.model.network import VXLAN_PORT, VXLAN_VNI
from emulator.model.node import Node
from emulator.pipeline import hostrules
from emulator.runtime import caliconet, flannelnet, kernel, ovs, underlay
from emulator.runtime.proc import ip_batch, run, start_time
from emulator.runtime.records import Records

NODE_SYSCTLS = ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")


def machine_networks() -> list[tuple[str, ipaddress.IPv4Network]]:
    """(where, network) for every IPv4 address and route of the root namespace."""
    out: list[tuple[str, ipaddress.IPv4Network]] = []
    addrs = json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            if a.get("family") == "inet" and not a["local"].startswith("127."):
                out.append((f"{link['ifname']} address {a['local']}/{a['prefixlen']}",
                            ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False)))
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("local", "broadcast"):
            continue
        try:
            net = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if not net.is_loopback:
            out.append((f"route {dst} dev {route.get('dev', '?')}", net))
    return out


def preflight(config: ClusterConfig) -> None:
    """Refuse a cluster whose networks overlap this machine's.

    Raises:
        RuntimeFailure: one line naming the overlapping field and the machine's address or route.
    """
    ours = [("spec.network.underlay.subnet", ipaddress.IPv4Network(config.underlay.subnet)),
            ("spec.network.podSubnet", ipaddress.IPv4Network(config.pods.subnet)),
            ("spec.network.serviceSubnet", ipaddress.IPv4Network(config.services.subnet))]
    ours += [("spec.network.underlay.routedSubnets", ipaddress.IPv4Network(s)) for s in config.underlay.routed]
    ours += [("spec.network.loadBalancerPool", n) for n in config.lb_pool.networks()]
    for where, machine in machine_networks():
        for field_name, net in ours:
            if net.overlaps(machine):
                raise RuntimeFailure(f"{field_name} {net} overlaps this machine's {where}; choose another "
                                     "range (the emulation must not shadow the machine's own networks)")


@dataclass
class Fabric:
    config: ClusterConfig
    records: Records
    controller: str  # "unix:/run/k8semu/<cluster>/ofp.sock"
    hosts: dict[str, object] = field(default_factory=dict)  # node name -> mininet Host

    @property
    def scope(self) -> naming.Scope:
        return self.records.scope

    def build(self, switches_can_connect: Callable[[], ovs.Datapath]) -> ovs.Datapath:
        """Create every node, link and bridge, each under a free name, tagged and recorded;
        ``switches_can_connect`` runs just before the bridges are made and returns the datapath
        to make them with (the manager waits there for Open vSwitch, which it starts meanwhile,
        and for its controller to listen). Returns that datapath.

        Raises:
            RuntimeFailure: a name is taken by something that is not this cluster's (one line
                naming it; nothing of it is touched), or the kernel or OVS refused.
        """
        from mininet.node import Host  # noqa: I001 - Mininet is Debian's, for /usr/bin/python3, root only
        cfg, scope, rec = self.config, self.scope, self.records
        if cfg.kernel_dataplane:  # no switch: Flannel's or Calico's plumbing in each node
            (caliconet if cfg.cni == "calico" else flannelnet).build_nodes(self, Host)
            return ovs.Datapath("none", False)
        nodes = cfg.nodes
        netns = [naming.node_netns(scope, n) for n in underlay.host_names(cfg)]
        bridges = [naming.node_bridge(scope, n.index) for n in nodes]
        root_links = (underlay.links(cfg, scope) + [naming.gateway_veth(scope, n.index) for n in nodes]
                      + [naming.vxlan_device(scope, n.index) for n in nodes])
        kernel.check_free(rec, root_links + bridges, netns)
        kernel.ensure_netns_dir()
        ul = naming.underlay_bridge(scope)
        kernel.create_links(rec, [(ul, f"link add {ul} type bridge")])
        adds: list[tuple[str, str]] = []
        for node in nodes:
            host = self._host(Host, node.name)
            adds += [(naming.underlay_veth(scope, node.index),
                      f"link add {naming.underlay_veth(scope, node.index)} mtu {cfg.underlay.mtu} type veth peer "
                      f"name eth0 mtu {cfg.underlay.mtu} netns {host.pid}"),
                     (naming.gateway_veth(scope, node.index),
                      f"link add {naming.gateway_veth(scope, node.index)} mtu {cfg.pod_mtu} type veth peer name "
                      f"{naming.NODE_GATEWAY_IF} mtu {cfg.pod_mtu} netns {host.pid}")]
        kernel.create_links(rec, adds)
        ip_batch([f"link set {ul} up"] + [f"link set {naming.underlay_veth(scope, n.index)} master {ul} up"
                                          for n in nodes]
                 + [f"link set {naming.gateway_veth(scope, n.index)} up" for n in nodes])
        underlay.build_router(self, Host)
        for node in nodes:
            self._configure_node(node)
        vxlans = [naming.vxlan_device(scope, n.index) for n in nodes]
        rec.add("links", *[v for v in vxlans if kernel.link_alias(v) == rec.tag])
        kernel.disable_ipv6(vxlans)
        datapath = switches_can_connect()
        taken = [b for b, _ in ovs.bridges() if b in bridges]
        if taken:  # (the transaction below would refuse it too: no --may-exist)
            raise kernel.clash("Open vSwitch bridge", taken[0], rec)
        vsctl: list[str] = []
        for node in nodes:
            bridge = naming.node_bridge(scope, node.index)
            vsctl += ovs.bridge_args(bridge, naming.datapath_id(scope, node.index), datapath.type,
                                     self.controller, rec.tag)
            vsctl += ovs.port_args(bridge, naming.vxlan_device(scope, node.index), naming.TUNNEL_OFPORT)
            vsctl += ovs.port_args(bridge, naming.gateway_veth(scope, node.index), naming.GATEWAY_OFPORT)
        try:
            ovs.batch(vsctl)
        except RuntimeFailure as exc:
            if "already exists" in str(exc):
                raise kernel.clash("Open vSwitch bridge", str(exc).split('"')[1] if '"' in str(exc) else "?", rec)
            raise
        finally:
            rec.add("ovs_bridges", *kernel.ovs_tagged_bridges(rec.tag))
        kernel.disable_ipv6(bridges)  # the netdev datapath's bridge port is a tap in the root namespace
        ip_batch([f"link set {v} up" for v in vxlans])
        if datapath.type == "netdev":
            ovs.relax_userspace_conntrack()
        fdb = [f"fdb append {peer.vtep_mac} dev {naming.vxlan_device(scope, node.index)} dst {peer.ip}"
               for node in nodes for peer in nodes if peer is not node]
        if fdb:
            run(["bridge", "-batch", "-"], input="\n".join(fdb) + "\n")
        self._external_hosts(Host)
        if datapath.tx_offload_off:
            for node in nodes:
                run(["ethtool", "-K", naming.gateway_veth(scope, node.index), "tx", "off"], check=False)
                run(["ip", "netns", "exec", naming.node_netns(scope, node.name), "ethtool", "-K",
                     naming.NODE_GATEWAY_IF, "tx", "off"], check=False)
        return datapath

    def _host(self, host_class, name: str):
        """A Mininet host whose namespace is attached as ``<cluster>_<name>``, without IPv6."""
        host = host_class(name, inNamespace=True)
        self.hosts[name] = host
        self.records.add("processes", [host.pid, start_time(host.pid), f"node {name}"])
        netns = naming.node_netns(self.scope, name)
        run(["ip", "netns", "attach", netns, str(host.pid)])  # refuses a taken name (O_EXCL)
        kernel.record_netns(self.records, netns)
        run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *NODE_SYSCTLS])
        return host

    def _external_hosts(self, host_class) -> None:
        """Hosts outside the cluster: on the underlay, with routes to the load-balancer pool
        (which may lie outside the underlay subnet, as MetalLB pools often do), to the routed
        subnets through the router, and nowhere else."""
        cfg, scope = self.config, self.scope
        pool_routes = [str(n) for n in cfg.lb_pool.networks()
                       if not n.subnet_of(ipaddress.IPv4Network(cfg.underlay.subnet))]
        router = cfg.underlay.router_ip(cfg.underlay.subnet)
        for ext in cfg.external_hosts:
            veth = naming.external_veth(scope, ext.index)
            host = self._host(host_class, ext.name)
            kernel.create_links(self.records, [(veth, f"link add {veth} mtu {cfg.underlay.mtu} type veth peer "
                                                      f"name eth0 mtu {cfg.underlay.mtu} netns {host.pid}")])
            ip_batch([f"link set {veth} master {naming.underlay_bridge(scope)} up"])
            ip_batch(["link set lo up", "link set eth0 up",
                      f"addr add {ext.ip}/{cfg.underlay.prefixlen} dev eth0"] +
                     [f"route add {r} dev eth0" for r in pool_routes] +
                     [f"route add {s} via {router} dev eth0" for s in cfg.underlay.routed],
                     netns=naming.node_netns(scope, ext.name))

    def _configure_node(self, node: Node) -> None:
        cfg, scope = self.config, self.scope
        vxlan = naming.vxlan_device(scope, node.index)
        lines = [
            "link set lo up",
            "link set eth0 up",
            f"addr add {node.ip}/{node.prefixlen} dev eth0",
            f"link set {naming.NODE_GATEWAY_IF} address {node.gateway_mac} up",
            f"addr add {node.gateway_ip}/{cfg.pods.node_mask} dev {naming.NODE_GATEWAY_IF}",
            f"link add {vxlan} address {node.vtep_mac} type vxlan "
            f"id {VXLAN_VNI} local {node.ip} dev eth0 dstport {VXLAN_PORT} nolearning",
            f"link set {vxlan} alias {self.records.tag}",
            f"link set {vxlan} netns {os.getpid()}",
        ]
        for peer in cfg.nodes:
            if peer is not node:
                lines.append(f"route add {peer.pod_cidr} via {peer.gateway_ip} "
                             f"dev {naming.NODE_GATEWAY_IF} onlink")
        lines += hostrules.node_routes(cfg.services.subnet, naming.NODE_GATEWAY_IF)
        lines += [f"route add {s} via {cfg.underlay.router_ip(node.subnet)} dev eth0"
                  for s in cfg.underlay.subnets if s != node.subnet]  # the other racks, through the router
        if cfg.kube_proxy:
            # kube-proxy's DROP for an external IP or load-balancer address without a local
            # endpoint is in FORWARD: a packet gets there only through a route, so the node gets
            # the default route a real node has (its subnet's .1; sealed: nothing beyond it), as
            # on flannel, rather than answering "network unreachable" first
            lines.append(f"route add default via {cfg.underlay.router_ip(node.subnet)} dev eth0")
        ip_batch(lines, netns=naming.node_netns(scope, node.name), force=False)

    def bridges(self) -> list[str]:
        return [naming.node_bridge(self.scope, n.index) for n in self.config.nodes]
