"""The cluster fabric: nodes as Mininet hosts on an underlay bridge, each with its own
Open vSwitch bridge, gateway and VXLAN device.

::

      root namespace                          node namespace (Mininet host "worker-1")
      k8s-underlay (Linux bridge) --k8u-1 ====== eth0 172.18.0.3/24
      k8br-1 (OVS, dpid 2) --port 2-- k8g-1 ==== k8semu-gw0 10.244.1.1/24 (the pods' gateway)
             |--port 1-- k8x-1 (VXLAN: created in the node, moved out; its UDP socket stays
             |                  in the node, so encapsulated packets leave by the node's eth0)
             |--port 100+n-- kp<hash> ========== pod eth0 (its own namespace)

The underlay bridge has no address and nothing routes from it: the emulation is sealed.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass, field

from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.model.node import Node
from emulator.pipeline import hostrules
from emulator.runtime import ovs
from emulator.runtime.proc import ip_batch, run, start_time
from emulator.runtime.records import Records

VXLAN_VNI = 1
VXLAN_PORT = 4789


@dataclass
class Fabric:
    config: ClusterConfig
    records: Records
    datapath: ovs.Datapath
    controller_port: int
    hosts: dict[str, object] = field(default_factory=dict)  # node name -> mininet Host

    def build(self) -> None:
        """Create every node, link and bridge; record each before creating it."""
        from mininet.node import Host  # mininet is only needed here, as root

        cfg = self.config
        nodes = cfg.nodes
        self.records.add("links", naming.UNDERLAY_BRIDGE, *(naming.underlay_veth(n.index) for n in nodes),
                         *(naming.gateway_veth(n.index) for n in nodes),
                         *(naming.vxlan_device(n.index) for n in nodes))
        self.records.add("ovs_bridges", *(naming.node_bridge(n.index) for n in nodes))
        self.records.add("netns", *(naming.node_netns(n.name) for n in nodes))
        root_lines = [f"link add {naming.UNDERLAY_BRIDGE} type bridge",
                      f"link set {naming.UNDERLAY_BRIDGE} up"]
        for node in nodes:
            host = Host(node.name, inNamespace=True)
            self.hosts[node.name] = host
            self.records.add("processes", [host.pid, start_time(host.pid), f"node {node.name}"])
            run(["ip", "netns", "attach", naming.node_netns(node.name), str(host.pid)])
            root_lines += [
                f"link add {naming.underlay_veth(node.index)} mtu {cfg.underlay.mtu} type veth peer "
                f"name eth0 mtu {cfg.underlay.mtu} netns {host.pid}",
                f"link set {naming.underlay_veth(node.index)} master {naming.UNDERLAY_BRIDGE} up",
                f"link add {naming.gateway_veth(node.index)} mtu {cfg.pod_mtu} type veth peer name "
                f"{naming.NODE_GATEWAY_IF} mtu {cfg.pod_mtu} netns {host.pid}",
                f"link set {naming.gateway_veth(node.index)} up",
            ]
        ip_batch(root_lines)
        for node in nodes:
            self._configure_node(node)
        vsctl: list[str] = []
        for node in nodes:
            bridge = naming.node_bridge(node.index)
            vsctl += ovs.bridge_args(bridge, node.dpid, self.datapath.type, self.controller_port)
            vsctl += ovs.port_args(bridge, naming.vxlan_device(node.index), naming.TUNNEL_OFPORT)
            vsctl += ovs.port_args(bridge, naming.gateway_veth(node.index), naming.GATEWAY_OFPORT)
        ip_batch([f"link set {naming.vxlan_device(n.index)} up" for n in nodes])
        ovs.batch(vsctl)
        if self.datapath.type == "netdev":
            ovs.relax_userspace_conntrack()
        fdb = [f"fdb append {peer.vtep_mac} dev {naming.vxlan_device(node.index)} dst {peer.ip}"
               for node in nodes for peer in nodes if peer is not node]
        if fdb:
            run(["bridge", "-batch", "-"], input="\n".join(fdb) + "\n")
        self._external_hosts()
        if self.datapath.tx_offload_off:
            for node in nodes:
                run(["ethtool", "-K", naming.gateway_veth(node.index), "tx", "off"], check=False)
                run(["ip", "netns", "exec", node.name, "ethtool", "-K", naming.NODE_GATEWAY_IF,
                     "tx", "off"], check=False)

    def _external_hosts(self) -> None:
        """Hosts outside the cluster: on the underlay, with routes to the load-balancer pool
        (which may lie outside the underlay subnet, as MetalLB pools often do) and nowhere else."""
        from mininet.node import Host
        cfg = self.config
        pool_routes = [str(n) for n in cfg.lb_pool.networks()
                       if not n.subnet_of(ipaddress.IPv4Network(cfg.underlay.subnet))]
        for ext in cfg.external_hosts:
            veth = naming.external_veth(ext.index)
            self.records.add("links", veth)
            self.records.add("netns", ext.name)
            host = Host(ext.name, inNamespace=True)
            self.records.add("processes", [host.pid, start_time(host.pid), f"node {ext.name}"])
            run(["ip", "netns", "attach", ext.name, str(host.pid)])
            ip_batch([f"link add {veth} mtu {cfg.underlay.mtu} type veth peer name eth0 "
                      f"mtu {cfg.underlay.mtu} netns {host.pid}",
                      f"link set {veth} master {naming.UNDERLAY_BRIDGE} up"])
            ip_batch(["link set lo up", "link set eth0 up",
                      f"addr add {ext.ip}/{cfg.underlay.prefixlen} dev eth0"] +
                     [f"route add {r} dev eth0" for r in pool_routes], netns=ext.name)
            if ext.dns_server:
                self._external_dns(ext)

    def _external_dns(self, ext) -> None:
        """An upstream DNS server outside the cluster: k8semu's server, authoritative for the
        names the spec gives it (NXDOMAIN for anything else), logging every query."""
        directory = self.records.path.parent / "dns"
        directory.mkdir(exist_ok=True)
        lines = "\n".join(f"        {ip} {name}" for name, ip in ext.dns_records)
        corefile = directory / f"{ext.name}.Corefile"
        corefile.write_text(f".:53 {{\n    log\n    hosts {{\n{lines}\n    }}\n}}\n")
        log = open(directory / f"{ext.name}.log", "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", ext.name, sys.executable, "-m", "emulator.dns.server",
                                 "-conf", str(corefile)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.records.add("processes", [proc.pid, start_time(proc.pid), f"dns {ext.name}"])

    def _configure_node(self, node: Node) -> None:
        cfg = self.config
        lines = [
            "link set lo up",
            "link set eth0 up",
            f"addr add {node.ip}/{cfg.underlay.prefixlen} dev eth0",
            f"link set {naming.NODE_GATEWAY_IF} address {node.gateway_mac} up",
            f"addr add {node.gateway_ip}/{cfg.pods.node_mask} dev {naming.NODE_GATEWAY_IF}",
            f"link add {naming.vxlan_device(node.index)} address {node.vtep_mac} type vxlan "
            f"id {VXLAN_VNI} local {node.ip} dev eth0 dstport {VXLAN_PORT} nolearning",
            f"link set {naming.vxlan_device(node.index)} netns {os.getpid()}",
        ]
        for peer in cfg.nodes:
            if peer is not node:
                lines.append(f"route add {peer.pod_cidr} via {peer.gateway_ip} "
                             f"dev {naming.NODE_GATEWAY_IF} onlink")
        lines += hostrules.node_routes(cfg.services.subnet, naming.NODE_GATEWAY_IF)
        ip_batch(lines, netns=naming.node_netns(node.name))
        run(["ip", "netns", "exec", naming.node_netns(node.name), "sysctl", "-q", "-w",
             "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
             "net.ipv4.conf.default.rp_filter=0", "net.ipv6.conf.all.disable_ipv6=1"])

    def bridges(self) -> list[str]:
        return [naming.node_bridge(n.index) for n in self.config.nodes]
