"""Component faults (issue #16): the request checked once (``model.components``), the data planes
that have each component, and calico's route confirmation letting routes and sessions through a
gone node be (a lost node, a stopped BIRD) while it still waits for everything else."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from emulator.cluster import controllers
from emulator.cluster.admit import admit_cluster
from emulator.cluster.dataplane import network_view
from emulator.cluster.store import ClusterState
from emulator.model import components
from emulator.model.calico import RR_LABEL, BGPConfig
from emulator.model.netview import NetworkView
from emulator.runtime import birdctl, caliconet
from emulator.scenario import model as scenario
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("action, component, node, fault", [
    ("kill", "coredns", "", components.Fault("kill", "coredns")),
    ("stop", "kube-proxy", "worker-1", components.Fault("stop", "kube-proxy", "worker-1")),
    ("stop", "dns/upstream-dns", "", components.Fault("stop", "dns", "", "upstream-dns")),
    ("start", "bird", "worker-2", components.Fault("start", "bird", "worker-2")),
])
def test_a_fault_is_parsed_into_its_parts(action, component, node, fault) -> None:
    assert components.parse(action, component, node) == fault


@pytest.mark.parametrize("action, component, node, message", [
    ("pause", "coredns", "", "unknown action 'pause': one of kill, stop, start"),
    ("kill", "etcd", "", "unknown component 'etcd'"),
    ("stop", "dns", "", "name the external host: dns/NAME"),
    ("stop", "coredns/x", "", "coredns takes no /NAME"),
    ("stop", "controller", "worker-1", "controller does not run on nodes"),
    ("stop", "kube-proxy", "Worker_1", "node: 'Worker_1' is not a valid DNS-1123 label"),
    ("stop", "dns/../../etc", "", "external host: '../../etc' is not a valid DNS-1123 label"),
])
def test_a_bad_fault_is_refused_naming_what_is_accepted(action, component, node, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        components.parse(action, component, node)


def test_each_component_exists_on_its_data_planes_only() -> None:
    assert components.applies(components.parse("stop", "controller"), "flannel") == \
        "cni: flannel has no controller (the SDN controller runs on cni: openflow)"
    assert components.applies(components.parse("stop", "bird"), "flannel").startswith("cni: flannel has no bird")
    assert components.applies(components.parse("stop", "kube-proxy"), "openflow").startswith("cni: openflow has no")
    assert components.applies(components.parse("stop", "kube-proxy"), "openflow", "iptables") == ""
    assert components.applies(components.parse("stop", "kube-proxy", "w1"), "calico", "nftables") == ""
    for cni in ("openflow", "flannel", "calico"):
        assert components.applies(components.parse("kill", "coredns"), cni) == ""
        assert components.applies(components.parse("stop", "dns/up"), cni) == ""
    assert components.applies(components.parse("stop", "bird", "w1"), "calico") == ""


def test_the_target_reads_as_a_user_wrote_it() -> None:
    assert components.parse("stop", "kube-proxy", "worker-1").target == "kube-proxy on worker-1"
    assert components.parse("stop", "dns/upstream-dns").target == "dns/upstream-dns"


def test_a_scenario_step_is_checked_as_the_verb_is(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    (tmp_path / "c.yaml").write_text((ROOT / "topologies" / "default.yaml").read_text())
    path.write_text("cluster: c.yaml\nsteps:\n  - name: a\n    fault: {stop: etcd}\n"
                    "  - name: b\n    fault: {kill: coredns, node: worker-1}\n")
    with pytest.raises(Exception, match="unknown component 'etcd'"):
        scenario.load_scenario(path)
    path.write_text("cluster: c.yaml\nsteps:\n  - name: b\n    fault: {kill: coredns, node: worker-1}\n")
    assert scenario.load_scenario(path).steps[0].args == {"kill": "coredns", "node": "worker-1"}


# -- calico: what a node's confirmation lets be while nodes are gone -------------------------------
def _routing(tmp_path, monkeypatch, bgp=None):
    cfg = admit_cluster(ROOT / "topologies" / "calico.yaml")
    if bgp is not None:  # reflectors labelled as the spec labels them
        nodes = tuple(replace(n, labels={RR_LABEL: "true"}) if n.name in bgp.route_reflectors else n for n in cfg.nodes)
        cfg = replace(cfg, nodes=nodes, calico=replace(cfg.calico, bgp=bgp))
    routing = caliconet.Routing(cfg, None, tmp_path, supervisor=None)
    routing.bgp = network_view(ClusterState(cfg)).bgp
    ips = {n.name: n.ip for n in cfg.nodes}
    return routing, ips


def _check(routing, monkeypatch, node, expected, got, sessions) -> bool:
    """The node's check with a view whose blocks are those of ``expected`` (a blackhole: the
    node's own; a route: the block of the node it goes via)."""
    owners = {n.ip: n.name for n in routing.cfg.nodes}
    blocks = tuple((dst, node if hop == "blackhole" else owners[hop]) for dst, hop in expected.items())
    view = NetworkView(5, blocks=blocks, bgp=routing.bgp)
    routing.wanted[node] = (5, expected, view)
    monkeypatch.setattr(routing, "routes", lambda n: dict(got))
    monkeypatch.setattr(birdctl, "bgp_sessions", lambda folder: dict(sessions))
    return routing._check(node, 5, expected, view)


def test_routes_and_sessions_through_a_lost_node_may_be_there_or_not(tmp_path, monkeypatch) -> None:
    routing, ips = _routing(tmp_path, monkeypatch)
    w2 = ips["worker-2"].replace(".", "_")
    expected = {"10.244.0.0/26": ips["control-plane"], "10.244.0.64/26": "blackhole", "10.244.0.128/26": ips["worker-2"]}
    lost = {k: v for k, v in expected.items() if v != ips["worker-2"]}
    down = {f"Mesh_{ips['control-plane'].replace('.', '_')}": "up Established", f"Mesh_{w2}": "start Active"}
    assert not _check(routing, monkeypatch, "worker-1", expected, lost, down)  # worker-2 not gone: waited for
    assert "missing 10.244.0.128/26" in routing.behind["worker-1"]
    routing.set_gone("worker-2", "node", True)
    assert _check(routing, monkeypatch, "worker-1", expected, lost, down)  # its route gone, its session down
    assert _check(routing, monkeypatch, "worker-1", expected, expected, down)  # or still there (hold timer)
    assert routing.confirmed("worker-1") == 5
    # everything else is still waited for
    assert not _check(routing, monkeypatch, "worker-1", expected, {"10.244.0.128/26": ips["worker-2"]}, down)
    routing.set_gone("worker-2", "node", False)
    assert not _check(routing, monkeypatch, "worker-1", expected, lost, down)


def test_a_gone_node_is_not_checked(tmp_path, monkeypatch) -> None:
    routing, ips = _routing(tmp_path, monkeypatch)
    routing.set_gone("worker-2", "bird", True)
    routing.set_gone("worker-2", "node", True)
    assert _check(routing, monkeypatch, "worker-2", {"10.244.0.0/26": ips["control-plane"]}, {}, {})
    routing.set_gone("worker-2", "node", False)  # its BIRD is still stopped
    assert routing.gone == {"worker-2": {"bird"}}
    assert _check(routing, monkeypatch, "worker-2", {"10.244.0.0/26": ips["control-plane"]}, {}, {})


def test_with_its_only_reflector_gone_a_client_may_lose_the_other_clients_routes(tmp_path, monkeypatch) -> None:
    routing, ips = _routing(tmp_path, monkeypatch, BGPConfig(64512, ("control-plane",)))
    rr = f"Node_{ips['control-plane'].replace('.', '_')}"
    expected = {"10.244.0.0/26": ips["control-plane"], "10.244.0.128/26": ips["worker-2"]}
    assert not _check(routing, monkeypatch, "worker-1", expected, {}, {rr: "start Connect"})
    routing.set_gone("control-plane", "bird", True)
    assert _check(routing, monkeypatch, "worker-1", expected, {}, {rr: "start Connect"})


def test_with_another_reflector_alive_a_clients_routes_are_waited_for(tmp_path, monkeypatch) -> None:
    routing, ips = _routing(tmp_path, monkeypatch, BGPConfig(64512, ("control-plane", "worker-2")))
    routing.set_gone("control-plane", "bird", True)
    expected = {"10.244.0.0/26": ips["control-plane"], "10.244.0.128/26": ips["worker-2"]}
    assert not _check(routing, monkeypatch, "worker-1", expected, {}, {})  # worker-2 reflects, and is a peer
    assert _check(routing, monkeypatch, "worker-1", expected, {"10.244.0.128/26": ips["worker-2"]}, {})


def test_a_session_that_cannot_come_up_is_not_waited_for(tmp_path, monkeypatch) -> None:
    """A BGPPeer the other end does not return (or of another AS) stays Active on a real node
    too: the node's confirmation waits for the sessions that can come up, not for that one."""
    routing, ips = _routing(tmp_path, monkeypatch)
    state = ClusterState(routing.cfg)
    controllers.apply(state, parse_documents(load_text(
        "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: one-way}\n"
        "spec: {node: worker-1, peerIP: 172.18.0.4, asNumber: 65000}\n", "<test>")).objects)
    routing.bgp = network_view(state).bgp
    assert [s.name for s in routing.bgp.of("worker-1")][-1] == "Mesh_172_18_0_4"  # the mesh covers worker-2
    controllers.apply(state, parse_documents(load_text(
        "apiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: default}\n"
        "spec: {nodeToNodeMeshEnabled: false}\n", "<test>")).objects)
    routing.bgp = network_view(state).bgp
    assert [s.name for s in routing.bgp.of("worker-1")] == ["Node_172_18_0_4"]
    expected = {"10.244.0.64/26": "blackhole"}
    assert _check(routing, monkeypatch, "worker-1", expected, expected, {"Node_172_18_0_4": "start Active"})
