"""One node's kube-proxy as a cluster runs it: its options for either mode, from the validated
cluster config, and its full sync; the one place both the node's proxier and ``plan`` take them
from."""
from __future__ import annotations

from emulator.kubeproxy import iptables, nftables
from emulator.model.cluster import ClusterConfig
from emulator.model.netview import ServicePortView


def options(config: ClusterConfig, node: str) -> iptables.Options | nftables.Options:
    """The node's kube-proxy options in the cluster's mode (``--cluster-cidr``: the pod range;
    nftables: the node's address for NodePorts and the Service range)."""
    if config.kube_proxy == "nftables":
        return nftables.Options(node, config.pods.subnet, (config.node(node).ip,), (config.services.subnet,))
    return iptables.Options(node, config.pods.subnet, random_fully=True)


def full_sync(config: ClusterConfig, node: str, services) -> str:
    """What a full sync loads on the node (``iptables-restore --noflush`` or ``nft -f`` input)."""
    opts = options(config, node)
    if config.kube_proxy == "nftables":
        return nftables.render(services, opts)
    return iptables.render(services, opts)


def partial_sync(config: ClusterConfig, node: str, old: list[ServicePortView], new: list[ServicePortView]) -> str:
    """What a partial sync loads on top of the rules ``old`` gave ("" when nothing changed)."""
    opts = options(config, node)
    if config.kube_proxy == "nftables":
        return nftables.update(old, new, opts)
    return iptables.render_update(old, new, opts)


def jumps_restore() -> str:
    """kube-proxy's jumps from the built-in chains as one ``iptables-restore --noflush`` input,
    each inserted first in its chain in an order that leaves them as JUMPS lists them (for a
    fresh node: kube-proxy's EnsureRule would find none there)."""
    tables: dict[str, list[str]] = {}
    for table, chain, rule in reversed(iptables.JUMPS):
        tables.setdefault(table, []).append(f"-I {chain} 1 {rule}")
    return "".join(f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n" for table, lines in tables.items())
