"""The node agent: per-node kernel state for Services, and the LoadBalancer address speaker.

For each node it keeps the ``iptables`` nat table equal to ``pipeline.hostrules`` for the
current view (re-applied only when the rendering changes; with kube-proxy beside the controller
only the CNI's chains, so kube-proxy's are left alone), and for each LoadBalancer address
it picks one Ready node to hold it on eth0 (MetalLB's L2 mode: that node answers ARP for it),
moving it, with a gratuitous ARP, when the node goes NotReady (its eth0 is down). For a Service
with externalTrafficPolicy Local only a node with a ready endpoint of it may hold the address
(MetalLB's speaker does the same): no node with one, no announcement. It also keeps each
node's health check listeners (``healthcheck``), and flushes the UDP conntrack entries a
Service's lost endpoint leaves stale once every switch has the change (``pipeline.stale``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.pipeline import hostrules
from emulator.pipeline.stale import stale_udp_entries
from emulator.model.netview import NetworkView
from emulator.runtime import ovs
from emulator.runtime.healthcheck import HealthChecks
from emulator.runtime.proc import run

HEALTH_PERIOD = 0.5
SYS_NET = "/sys/class/net"


def carrier(ifname: str) -> bool:
    """The link has a carrier (for a veth: both ends are up); False when down or gone."""
    try:
        with open(f"{SYS_NET}/{ifname}/carrier") as f:
            return f.read().strip() == "1"
    except OSError:  # EINVAL while the device itself is down
        return False


@dataclass
class NodeAgent:
    config: ClusterConfig
    scope: naming.Scope
    applied: dict[str, str] = field(default_factory=dict)  # node -> rendered rules
    ready: dict[str, bool] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)  # LB IP -> node
    localnet: set[str] = field(default_factory=set)  # nodes whose route_localnet is on
    checked: float = 0.0
    view: NetworkView | None = None  # the last one synced
    stale: list = field(default_factory=list)  # (generation, UDP conntrack entries it made stale)
    health: HealthChecks = field(init=False)

    def __post_init__(self) -> None:
        self.health = HealthChecks(self.scope)

    def node_ready(self, name: str) -> bool:
        return self.ready.get(name, True)

    def check_health(self) -> bool:
        """Refresh node readiness from eth0's link state; True if anything changed.

        Read from the root namespace's end of each node's eth0 veth: its carrier is on only
        while the node's eth0 is up (a file read per node, where asking ``ip -n`` costs a process
        and a mount namespace per node, slow once a thousand pods' namespaces are mounted)."""
        if time.monotonic() - self.checked < HEALTH_PERIOD:
            return False
        self.checked = time.monotonic()
        if self.health.failed and self.view is not None:
            # a health check listener that could not be opened (its port still held by the one
            # being closed, or by anything else) is tried again each period, not only at the
            # next view change
            self._sync_health(self.view)
        changed = False
        for node in self.config.nodes:
            up = carrier(naming.underlay_veth(self.scope, node.index))
            if self.ready.get(node.name) != up:
                self.ready[node.name] = up
                changed = True
        return changed

    def sync(self, view: NetworkView) -> None:
        """With ``cni: flannel`` kube-proxy's rules (``runtime.proxier``), the portmap plugin and
        flanneld's chains do what the host rules do on the OpenFlow data plane: none are written.
        With kube-proxy beside the controller, the CNI's chains alone (``hostrules.cni_nat``)."""
        beside = self.config.openflow_with_kube_proxy
        for node in () if self.config.kernel_dataplane else view.nodes:
            if beside:
                rules = hostrules.cni_nat(view, node, self.config.pods.subnet)
            else:
                rules = hostrules.iptables_nat(view, node, self.config.pods.subnet) + hostrules.iptables_filter(view)
            if self.applied.get(node.name) != rules:
                netns = naming.node_netns(self.scope, node.name)
                if node.name not in self.localnet and hostrules.loopback_host_ports(view, node):
                    # a hostPort on 127.0.0.1 is DNATed away from loopback: the kernel routes
                    # such packets only with route_localnet (portmap sets it too); left on after
                    run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"])
                    self.localnet.add(node.name)
                if beside:  # kube-proxy's chains are in the same tables: never flushed by k8semu
                    run(["ip", "netns", "exec", netns, "iptables-restore", "-w", "5", "--noflush"], input=rules)
                    if node.name not in self.applied:
                        run(["ip", "netns", "exec", netns, "iptables-restore", "-w", "5", "--noflush"],
                            input=hostrules.CNI_JUMPS)
                else:
                    run(["ip", "netns", "exec", netns, "iptables-restore"], input=rules)
                self.applied[node.name] = rules
        self._announce(view)
        stale = stale_udp_entries(self.view, view)
        if stale and not self.config.kernel_dataplane:  # there kube-proxy flushes them (runtime.proxier)
            self.stale.append((view.generation, stale))
        self.view = view
        self._sync_health(view)

    def flush_stale(self, confirmed: dict[str, int]) -> None:
        """Flush the UDP conntrack entries a view made stale, once every switch holds that view
        (so no new datagram is sent on to the endpoint that left), as kube-proxy does after
        syncing its rules (``pipeline.stale``)."""
        if self.config.kernel_dataplane:
            return
        done = min(confirmed.values(), default=-1)
        while self.stale and self.stale[0][0] <= done:
            _, entries = self.stale.pop(0)
            for node, zone, match in entries:
                ovs.ct_flush(naming.node_bridge(self.scope, self.config.node(node).index), zone, match)

    def _sync_health(self, view: NetworkView) -> None:
        failed = dict(self.health.failed)
        self.health.sync(view)
        for (node, port), why in self.health.failed.items():
            if failed.get((node, port)) != why:
                print(f"[WARN] node {node}: cannot serve healthCheckNodePort {port}: {why}", flush=True)

    def candidates(self, view: NetworkView) -> dict[str, list[str]]:
        """LoadBalancer address -> the Ready nodes that may announce it (for externalTrafficPolicy
        Local: those with a ready endpoint of the Service; a Service's ports share its address)."""
        ready = [n.name for n in self.config.nodes if self.node_ready(n.name)]
        out: dict[str, set[str]] = {}
        for svc in view.services:
            if not svc.lb_ip:
                continue
            nodes = out.setdefault(svc.lb_ip, set())
            nodes.update(n for n in ready if not svc.external_local or svc.ready_on(n))
        return {ip: [n for n in ready if n in nodes] for ip, nodes in sorted(out.items())}

    def _announce(self, view: NetworkView) -> None:
        candidates = self.candidates(view)
        for ip in list(self.holders):
            if self.holders[ip] not in candidates.get(ip, ()):
                self._release(ip)
        for i, (ip, nodes) in enumerate(candidates.items()):
            if ip not in self.holders and nodes:
                node = nodes[i % len(nodes)]  # spread addresses over the nodes
                run(["ip", "-n", naming.node_netns(self.scope, node), "addr", "replace", f"{ip}/32", "dev", "eth0"])
                run(["ip", "netns", "exec", naming.node_netns(self.scope, node), "arping", "-q", "-U", "-c", "1",
                     "-I", "eth0", ip], check=False)
                self.holders[ip] = node

    def _release(self, ip: str) -> None:
        node = self.holders.pop(ip)
        run(["ip", "-n", naming.node_netns(self.scope, node), "addr", "del", f"{ip}/32", "dev", "eth0"], check=False)
