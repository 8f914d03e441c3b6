"""Underlays of several subnets with the underlay router between them
(``spec.network.underlay.routedSubnets``, issue #14): nodes addressed per subnet, the router's
addresses, what the fabric makes and checks free, Calico's VXLANCrossSubnet encapsulating only
across the router. The refusals are spec-error fixtures (underlay_routed_error,
underlay_calico_routed_error)."""
from __future__ import annotations

from pathlib import Path

from emulator.calico import config as calico
from emulator.cluster.admit import admit_cluster
from emulator.model import naming
from emulator.model.netview import NetworkView
from emulator.runtime import underlay

ROOT = Path(__file__).resolve().parents[2]


def test_nodes_are_addressed_in_their_own_subnet_from_2() -> None:
    cfg = admit_cluster(ROOT / "topologies" / "calico-crosssubnet.yaml")
    assert cfg.underlay.subnets == ("172.18.0.0/24", "172.18.1.0/24")
    assert [(n.name, n.ip, n.subnet, n.prefixlen) for n in cfg.nodes] == [
        ("control-plane", "172.18.0.2", "172.18.0.0/24", 24), ("worker-1", "172.18.0.3", "172.18.0.0/24", 24),
        ("worker-2", "172.18.1.2", "172.18.1.0/24", 24)]
    assert [cfg.underlay.router_ip(s) for s in cfg.underlay.subnets] == ["172.18.0.1", "172.18.1.1"]
    assert cfg.external_hosts[0].ip not in {n.ip for n in cfg.nodes}
    assert cfg.node("worker-1").same_subnet(cfg.node("control-plane"))
    assert not cfg.node("worker-1").same_subnet(cfg.node("worker-2"))


def test_the_router_is_made_only_with_routed_subnets() -> None:
    racks = admit_cluster(ROOT / "topologies" / "racks.yaml")
    scope = naming.Scope(racks.name)
    assert underlay.host_names(racks)[-1] == naming.ROUTER and naming.router_veth(scope) in underlay.links(racks, scope)
    flat = admit_cluster(ROOT / "topologies" / "default.yaml")
    assert naming.ROUTER not in underlay.host_names(flat)
    assert naming.router_veth(naming.Scope(flat.name)) not in underlay.links(flat, naming.Scope(flat.name))


def test_cross_subnet_routes_encapsulate_only_across_the_router() -> None:
    cfg = admit_cluster(ROOT / "topologies" / "calico-crosssubnet.yaml")
    view = NetworkView(1, (), (), blocks=(("10.244.0.0/26", "control-plane"), ("10.244.0.64/26", "worker-1"),
                                          ("10.244.0.128/26", "worker-2")),
                       tunnels=(("control-plane", "10.244.0.0"), ("worker-1", "10.244.0.64"),
                                ("worker-2", "10.244.0.128")))
    assert calico.felix_state(cfg, view, "worker-1").routes == {
        "10.244.0.0/26": "via 172.18.0.2 dev eth0 onlink", "10.244.0.64/26": "blackhole",
        "10.244.0.128/26": "via 10.244.0.128 dev vxlan.calico onlink"}
    assert calico.felix_state(cfg, view, "worker-2").routes == {
        "10.244.0.0/26": "via 10.244.0.0 dev vxlan.calico onlink",
        "10.244.0.64/26": "via 10.244.0.64 dev vxlan.calico onlink", "10.244.0.128/26": "blackhole"}
