"""``k8semu plan``: validate a spec and print what ``up`` would build, without root (Kathara's
dry mode). The same controllers and pipeline run as in a live cluster, on a simulated state;
``--show flows`` prints each node's OpenFlow tables, or (``cni: flannel``) its kube-proxy rules."""
from __future__ import annotations

import random
from typing import TextIO

from emulator.cli.output import table
from emulator.cluster import controllers
from emulator.cluster.dataplane import network_view
from emulator.cluster.store import ClusterState
from emulator.kubeproxy import node as kube_proxy
from emulator.model import naming
from emulator.pipeline.build import flows_for_node
from emulator.cluster.admit import admit_cluster


def simulate(spec: str, seed: int = 0) -> ClusterState:
    """The state a fresh ``up`` of ``spec`` reaches (pod names from a seeded generator)."""
    config = admit_cluster(spec)
    state = ClusterState(config, rng=random.Random(seed))
    controllers.apply(state, list(config.manifests))
    return state


def plan(spec: str, show: str, out: TextIO) -> int:
    state = simulate(spec)
    cfg = state.config
    for warning in cfg.warnings:
        out.write(f"Warning: {warning}\n")
    scope = state.scope
    if show == "flows" and cfg.kernel_dataplane:  # no tables: each node's kube-proxy rules, full sync
        view = network_view(state)
        for node in cfg.nodes:
            out.write(f"# node {node.name}: kube-proxy ({cfg.kube_proxy})\n"
                      f"{kube_proxy.full_sync(cfg, node.name, view.services)}")
        return 0
    if show == "flows":
        view = network_view(state)
        for node in view.nodes:
            out.write(f"# node {node.name}: bridge {naming.node_bridge(scope, node.index)} (dpid {node.dpid:#x})\n")
            out.write("\n".join(f.to_ofctl() for f in flows_for_node(view, node.name)) + "\n")
            if cfg.kube_proxy:  # beside the controller: the node's kube-proxy rules too
                out.write(f"# node {node.name}: kube-proxy ({cfg.kube_proxy})\n"
                          f"{kube_proxy.full_sync(cfg, node.name, view.services)}")
        return 0
    if cfg.calico is not None:  # pods' addresses from the pools' blocks, routed (no bridge)
        pools = ", ".join(f"{p.cidr} /{p.block_size} blocks {p.encapsulation}" for p in cfg.calico.pools)
        bgp = ("BGP full mesh" if cfg.calico.bgp.mesh
               else f"BGP route reflectors {', '.join(cfg.calico.bgp.route_reflectors)}")
        plane = f"cni calico (pools {pools}; {bgp}, AS {cfg.calico.bgp.as_number}), kube-proxy {cfg.kube_proxy}"
        per_node = "blocks per node on demand"
    else:
        plane = (f"cni {cfg.cni} ({cfg.flannel_backend}), kube-proxy {cfg.kube_proxy}" if cfg.kernel_dataplane
                 else "cni openflow" + (f", kube-proxy {cfg.kube_proxy} beside the controller" if cfg.kube_proxy
                                        else ""))
        per_node = f"/{cfg.pods.node_mask} per node"
    routed = "".join(f" + {s}" for s in cfg.underlay.routed) + (" through the underlay router"
                                                                 if cfg.underlay.routed else "")
    out.write(f"cluster {cfg.name}: underlay {cfg.underlay.subnet}{routed} (MTU {cfg.underlay.mtu}), pods "
              f"{cfg.pods.subnet} ({per_node}, MTU {cfg.pod_mtu}), services "
              f"{cfg.services.subnet}; {plane}\n\n")
    bridge = {"calico": "-", "flannel": "cni0"}
    out.write(table(["NODE", "ROLE", "IP", "POD-CIDR", "BRIDGE", "NETNS"],
                    [[n.name, n.role, n.ip, n.pod_cidr, bridge.get(cfg.cni) or naming.node_bridge(scope, n.index),
                      naming.node_netns(scope, n.name)] for n in cfg.nodes]) + "\n\n")
    rows = [[r.obj.meta.namespace, r.obj.meta.name, r.status.node or "<pending>", r.status.ip or "-",
             naming.pod_netns(scope, r.obj.meta.namespace, r.obj.meta.name)] for r in state.pods()]
    out.write(table(["NAMESPACE", "POD", "NODE", "IP", "NETNS"], rows) + "\n")
    faults = [[str(i.link), i.describe()] for i in cfg.impairments] + \
        [[f"partition/{p.name}", p.describe()] for p in cfg.partitions]
    if faults:  # spec.impairments: in force from up
        out.write("\n" + table(["LINK", "IMPAIRMENTS"], faults) + "\n")
    return 0
