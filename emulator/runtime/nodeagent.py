"""The node agent: per-node kernel state for Services, and the LoadBalancer address speaker.

For each node it keeps the ``iptables`` nat table equal to ``pipeline.hostrules`` for the
current view (re-applied only when the rendering changes), and for each LoadBalancer address
it picks one Ready node to hold it on eth0 (MetalLB's L2 mode: that node answers ARP for it),
moving it, with a gratuitous ARP, when the node goes NotReady (its eth0 is down).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.pipeline import hostrules
from emulator.model.netview import NetworkView
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
    checked: float = 0.0

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
        changed = False
        for node in self.config.nodes:
            up = carrier(naming.underlay_veth(self.scope, node.index))
            if self.ready.get(node.name) != up:
                self.ready[node.name] = up
                changed = True
        return changed

    def sync(self, view: NetworkView) -> None:
        for node in view.nodes:
            rules = hostrules.iptables_nat(view, node, self.config.pods.subnet)
            if self.applied.get(node.name) != rules:
                run(["ip", "netns", "exec", naming.node_netns(self.scope, node.name), "iptables-restore"], input=rules)
                self.applied[node.name] = rules
        self._announce(view)

    def _announce(self, view: NetworkView) -> None:
        wanted = sorted({s.lb_ip for s in view.services if s.lb_ip})
        ready = [n.name for n in self.config.nodes if self.node_ready(n.name)]
        for ip in list(self.holders):
            if ip not in wanted or self.holders[ip] not in ready:
                self._release(ip)
        for i, ip in enumerate(wanted):
            if ip not in self.holders and ready:
                node = ready[i % len(ready)]  # spread addresses over the ready nodes
                run(["ip", "-n", naming.node_netns(self.scope, node), "addr", "replace", f"{ip}/32", "dev", "eth0"])
                run(["ip", "netns", "exec", naming.node_netns(self.scope, node), "arping", "-q", "-U", "-c", "1",
                     "-I", "eth0", ip], check=False)
                self.holders[ip] = node

    def _release(self, ip: str) -> None:
        node = self.holders.pop(ip)
        run(["ip", "-n", naming.node_netns(self.scope, node), "addr", "del", f"{ip}/32", "dev", "eth0"], check=False)
