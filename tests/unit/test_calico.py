"""Calico's data plane as data (issue #14): the IPAM's blocks (carving, affinity, borrowing,
release, exhaustion), BIRD's configuration for the course's three-node cluster (mesh and route
reflectors) as golden files, the conflist, Felix's outgoing NAT, the routes a node must hold,
and the CNI plugin's naming."""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from emulator.calico import bird, cniplugin
from emulator.calico import config as calico
from emulator.cluster.admit import admit_cluster
from emulator.cluster.dataplane import network_view
from emulator.cluster.store import ClusterState
from emulator.errors import RuntimeFailure
from emulator.model.calico import RR_LABEL, BGPConfig, Pool
from emulator.model.calicobgp import BGPView
from emulator.model.calicoipam import CalicoIPAM, report
from emulator.model.ipam import AddressesExhausted
from emulator.model.netview import NetworkView, PodView
from emulator.runtime import birdctl, caliconet

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path("calico")


def cluster():
    return admit_cluster(ROOT / "topologies" / "calico.yaml")


def test_the_calico_topology_selects_the_routed_data_plane() -> None:
    cfg = cluster()
    assert (cfg.cni, cfg.kube_proxy, cfg.kernel_dataplane, cfg.pod_mtu) == ("calico", "iptables", True, 1500)
    pool = cfg.calico.pools[0]
    assert (pool.name, pool.cidr, pool.block_size, pool.encapsulation, pool.nat_outgoing) == \
        ("default-ipv4-ippool", "10.244.0.0/16", 26, "None", True)
    assert cfg.calico.bgp.mesh and cfg.calico.bgp.as_number == 64512


def test_a_node_claims_the_lowest_free_block_and_fills_it_lowest_first() -> None:
    ipam = CalicoIPAM((Pool("p", "10.244.0.0/24", 26),))
    assert [ipam.allocate("w1", f"a{i}") for i in range(3)] == ["10.244.0.0", "10.244.0.1", "10.244.0.2"]
    assert ipam.allocate("w2", "b0") == "10.244.0.64"  # w2's own block
    assert [(b.cidr, b.affinity) for b in ipam.blocks.values()] == [("10.244.0.0/26", "w1"), ("10.244.0.64/26", "w2")]
    assert ipam.allocate("w1", "a0") == "10.244.0.0"  # the same handle: the same address


def test_a_full_block_makes_the_node_claim_another() -> None:
    ipam = CalicoIPAM((Pool("p", "10.244.0.0/24", 30),))
    got = [ipam.allocate("w1", f"a{i}") for i in range(5)]
    assert got[4] == "10.244.0.4" and [b.cidr for b in ipam.affine("w1")] == ["10.244.0.0/30", "10.244.0.4/30"]


def test_a_released_address_goes_to_the_end_of_the_free_list() -> None:
    ipam = CalicoIPAM((Pool("p", "10.244.0.0/24", 29),))
    a = ipam.allocate("w1", "a")
    ipam.allocate("w1", "b")
    ipam.release(a)
    assert ipam.allocate("w1", "c") == "10.244.0.2"  # not a's at once
    assert ipam.for_node("w1").allocated == {"10.244.0.1": "b", "10.244.0.2": "c"}


def test_with_every_block_claimed_a_node_borrows_and_the_address_is_routed_alone() -> None:
    ipam = CalicoIPAM((Pool("p", "10.244.0.0/27", 28),))  # two blocks of 16
    ipam.allocate("w1", "a")
    ipam.allocate("w2", "b")
    borrowed = ipam.allocate("w3", "c")
    assert borrowed == "10.244.0.1" and ipam.borrowed() == {"10.244.0.1": "w3"}
    assert not ipam.affine("w3")
    data = report(ipam)
    assert data["borrowed"] == [{"ip": "10.244.0.1", "node": "w3", "block": "10.244.0.0/28", "blockOwner": "w1",
                                 "handle": "c"}]
    assert data["pools"][0]["used"] == 3 and data["blocks"][0]["used"] == 2


def test_an_emptied_block_is_released_unless_it_is_the_nodes_last() -> None:
    ipam = CalicoIPAM((Pool("p", "10.244.0.0/24", 30),))
    ips = [ipam.allocate("w1", f"a{i}") for i in range(5)]  # two blocks
    ipam.release(ips[4])
    assert [b.cidr for b in ipam.affine("w1")] == ["10.244.0.0/30"]
    for ip in ips[:4]:
        ipam.release(ip)
    assert [b.cidr for b in ipam.affine("w1")] == ["10.244.0.0/30"]  # the node keeps one


def test_exhaustion_names_the_pools() -> None:
    ipam = CalicoIPAM((Pool("p", "10.244.0.0/30", 31),))
    for i in range(4):
        ipam.allocate("w1", f"a{i}")
    with pytest.raises(AddressesExhausted, match=r"10.244.0.0/30 \(every block is claimed and full\)"):
        ipam.allocate("w2", "x")


def test_the_cluster_state_schedules_pods_with_calicos_ipam() -> None:
    state = ClusterState(cluster())
    assert state.calico_ipam is not None
    ip = state.ipam["worker-1"].allocate("default/p")
    assert ip == "10.244.0.0" and state.calico_ipam.affine("worker-1")[0].cidr == "10.244.0.0/26"
    assert network_view(state).blocks == (("10.244.0.0/26", "worker-1"),)


def with_reflector(cfg, node: str = "control-plane"):
    """``cfg`` with ``node`` a route reflector, labelled as the spec labels it."""
    nodes = tuple(replace(n, labels={RR_LABEL: "true", **n.labels}) if n.name == node else n for n in cfg.nodes)
    return replace(cfg, nodes=nodes, calico=replace(cfg.calico, bgp=BGPConfig(cfg.calico.bgp.as_number, (node,))))


def bgp_of(cfg) -> BGPView:
    """The sessions the cluster's BGP objects make (what ``up`` writes from the spec)."""
    return network_view(ClusterState(cfg)).bgp


def _view(blocks, pods=(), cfg=None) -> NetworkView:
    return NetworkView(1, (), tuple(PodView(i, "d", f"p{i}", node, ip, "", 0) for i, (node, ip) in enumerate(pods)),
                       blocks=tuple(blocks), bgp=bgp_of(cfg or cluster()))


def test_bird_config_golden_mesh(golden) -> None:
    cfg = cluster()
    for node, blocks in (("control-plane", ["10.244.0.0/26"]), ("worker-1", ["10.244.0.64/26", "10.244.1.0/26"])):
        text = bird.config(cfg.calico, bgp_of(cfg), cfg.node(node), blocks)
        golden(str(GOLDEN / f"bird.{node}.conf"), text)
    text = bird.config(cfg.calico, bgp_of(cfg), cfg.node("worker-1"), [])
    assert "Mesh_172_18_0_2 from bgp_template" in text and "Mesh_172_18_0_4 from bgp_template" in text
    assert "# No IP blocks or static routes for this host." in text


def test_bird_config_golden_route_reflector(golden) -> None:
    cfg = cluster()
    rr = with_reflector(cfg)
    reflector = bird.config(rr.calico, bgp_of(rr), cfg.node("control-plane"), ["10.244.0.0/26"])
    client = bird.config(rr.calico, bgp_of(rr), cfg.node("worker-1"), ["10.244.0.64/26"])
    golden(str(GOLDEN / "bird.route-reflector.conf"), reflector)
    golden(str(GOLDEN / "bird.route-reflector-client.conf"), client)
    assert reflector.count("rr client;") == 2 and "Mesh_" not in reflector
    assert [p.name for p in bgp_of(rr).of("worker-1")] == ["Node_172_18_0_2"]


def test_bird_refuses_what_is_not_an_address() -> None:
    cfg = cluster()
    with pytest.raises(ValueError):
        bird.config(cfg.calico, bgp_of(cfg), cfg.node("worker-1"), ["10.244.0.0/26; protocol x {}"])


def test_conflist_golden(golden) -> None:
    cfg = cluster()
    text = calico.conflist(cfg, cfg.node("worker-1"))
    golden(str(GOLDEN / "10-calico.conflist"), text)
    conf = json.loads(text)
    assert [p["type"] for p in conf["plugins"]] == ["calico", "portmap"]
    assert conf["plugins"][0]["ipam"] == {"type": "calico-ipam"} and conf["plugins"][0]["mtu"] == 1500


def test_nat_outgoing_golden(golden) -> None:
    pools = (Pool("a", "10.244.0.0/17"), Pool("b", "10.244.128.0/17", nat_outgoing=False))
    sets, rules = calico.nat_outgoing(replace(cluster().calico, pools=pools))
    golden(str(GOLDEN / "nat-outgoing.ipset"), sets)
    golden(str(GOLDEN / "nat-outgoing.iptables"), rules)
    assert "add cali40masq-ipam-pools 10.244.128.0/17" not in sets and "add cali40all-ipam-pools 10.244.128.0/17" in sets


def test_expected_routes_follow_blocks_and_borrowed_addresses() -> None:
    cfg = cluster()
    view = _view([("10.244.0.0/26", "control-plane"), ("10.244.0.64/26", "worker-1")],
                 [("worker-2", "10.244.0.5"), ("worker-1", "10.244.0.65")])
    assert calico.expected_routes(cfg, view, "worker-1") == {
        "10.244.0.0/26": "172.18.0.2", "10.244.0.64/26": "blackhole", "10.244.0.5/32": "172.18.0.4"}
    assert calico.expected_routes(cfg, view, "worker-2") == {"10.244.0.0/26": "172.18.0.2",
                                                             "10.244.0.64/26": "172.18.0.3"}


def test_the_host_veth_is_named_as_calicos_plugin_names_it() -> None:
    assert cniplugin.veth_name("default", "web-0") == "cali" + hashlib.sha1(b"default.web-0").hexdigest()[:11]
    assert len(cniplugin.veth_name("a" * 63, "b" * 253)) == 15  # always a valid interface name


def test_the_launcher_runs_this_interpreter_isolated() -> None:
    text = cniplugin.launcher("calico-ipam")
    assert text.splitlines()[0].endswith(" -I") and "main('calico-ipam')" in text


def test_a_reflector_owning_the_block_does_not_reflect_a_borrowed_32() -> None:
    cfg = cluster()
    rr = with_reflector(cfg)
    view = _view([("10.244.0.0/26", "control-plane"), ("10.244.0.64/26", "worker-1")], [("worker-2", "10.244.0.5")],
                 rr)
    assert "10.244.0.5/32" not in calico.expected_routes(rr, view, "worker-1")  # via control-plane's /26 instead
    assert calico.expected_routes(rr, view, "control-plane")["10.244.0.5/32"] == "172.18.0.4"
    view = _view([("10.244.0.0/26", "control-plane"), ("10.244.0.64/26", "worker-1")], [("worker-2", "10.244.0.70")],
                 rr)
    assert calico.expected_routes(rr, view, "worker-1") == {"10.244.0.0/26": "172.18.0.2",
                                                            "10.244.0.64/26": "blackhole",
                                                            "10.244.0.70/32": "172.18.0.4"}


def test_felix_programs_vxlan_routes_via_the_tunnel_addresses(golden) -> None:
    cfg = admit_cluster(ROOT / "topologies" / "calico-vxlan.yaml")
    assert cfg.calico.vxlan and cfg.pod_mtu == 1450
    state = ClusterState(cfg)
    view = network_view(state)
    assert view.tunnels == (("control-plane", "10.244.0.0"), ("worker-1", "10.244.0.64"), ("worker-2", "10.244.0.128"))
    assert calico.expected_routes(cfg, view, "worker-1") == {}  # BIRD programs none of a VXLAN pool
    felix = calico.felix_state(cfg, view, "worker-1")
    assert felix.routes == {"10.244.0.0/26": "via 10.244.0.0 dev vxlan.calico onlink", "10.244.0.64/26": "blackhole",
                            "10.244.0.128/26": "via 10.244.0.128 dev vxlan.calico onlink"}
    assert felix.fdb == {cfg.node("control-plane").vtep_mac: "172.18.0.2", cfg.node("worker-2").vtep_mac: "172.18.0.4"}
    lines, fdb = calico.felix_changes(None, felix)
    golden(str(GOLDEN / "felix-vxlan.worker-1.ip"), "\n".join(lines) + "\n")
    golden(str(GOLDEN / "felix-vxlan.worker-1.fdb"), "\n".join(fdb) + "\n")
    golden(str(GOLDEN / "vxlan.calico.worker-1.ip"),
           "\n".join(calico.vxlan_device(cfg, cfg.node("worker-1"), "10.244.0.64")) + "\n")
    assert "route replace blackhole 10.244.0.64/26 proto 80" in lines
    gone = calico.FelixState({"10.244.0.0/26": felix.routes["10.244.0.0/26"]}, {}, {})
    assert calico.felix_changes(felix, gone)[0] == [
        "route del 10.244.0.128/26 proto 80", "route del blackhole 10.244.0.64/26 proto 80",
        "neigh del 10.244.0.0 dev vxlan.calico", "neigh del 10.244.0.128 dev vxlan.calico"]


def test_cross_subnet_routes_go_straight_to_the_node_on_one_subnet() -> None:
    cfg = cluster()
    cross = replace(cfg, calico=replace(cfg.calico, pools=(Pool("p", "10.244.0.0/16", 26, "VXLANCrossSubnet"),)))
    view = NetworkView(1, (), (), blocks=(("10.244.0.0/26", "control-plane"),),
                       tunnels=(("control-plane", "10.244.0.0"), ("worker-1", "10.244.0.64")))
    assert calico.felix_state(cross, view, "worker-1").routes == {"10.244.0.0/26": "via 172.18.0.2 dev eth0 onlink"}


def test_ipip_is_refused_with_the_reason(monkeypatch) -> None:
    cfg = cluster()
    ipip = replace(cfg, calico=replace(cfg.calico, pools=(Pool("p", "10.244.0.0/16", 26, "IPIP"),)))
    monkeypatch.setattr(caliconet, "_module_available", lambda name: False)
    monkeypatch.setattr(caliconet.os.path, "isdir", lambda path: False)
    with pytest.raises(RuntimeFailure, match="needs the ipip kernel module, which this kernel lacks"):
        caliconet.check_kernel(ipip)
    monkeypatch.setattr(caliconet, "_module_available", lambda name: True)
    with pytest.raises(RuntimeFailure, match="does not emulate IPIP yet"):
        caliconet.check_kernel(ipip)
    caliconet.check_kernel(cfg)  # None: nothing to refuse


def test_the_control_socket_reply_parser() -> None:
    reply = io.BytesIO(b"2002-Name       Proto      Table      State  Since         Info\n"
                       b"1002-static1    Static     master4    up     05:32:30.517  \n"
                       b" Mesh_172_18_0_3 BGP        ---        up     05:32:31.477  Established   \n"
                       b"1002-Mesh_172_18_0_4 BGP        ---        start  05:32:30.517  Active\n"
                       b"0000 \n")
    lines = birdctl._reply(reply)
    assert lines[0].startswith("Name") and len(lines) == 4
    with pytest.raises(birdctl.BirdError, match="syntax error"):
        birdctl._reply(io.BytesIO(b"9001 syntax error, unexpected CF_SYM_UNDEFINED\n"))
