"""Calico's objects written through the API on ``cni: calico`` (issue #14). IPPools: the
manifest checked field by field, the cluster's refusals (overlap, outside the pod subnet,
another encapsulation, IPIP, a changed cidr or blockSize, another CNI), the pools an address
comes from (disabled pools, nodeSelectors, allowedUses, the ``cni.projectcalico.org/ipv4pools``
annotation of a pod or its namespace, a pool that does not exist), a deleted pool's blocks, and
what the nodes get of the pools (BIRD's filters, the routes waited for, Felix's NAT sets swapped
in). BGPConfiguration and BGPPeers: Calico's selectors, the refusals, the sessions confd makes
(mesh, node-specific, reverse, route reflectors by annotation), which come up and where routes
reach. Nodes: kubectl label and annotate, within the rules."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.api import nodewrites
from emulator.api.status import ApiError
from emulator.calico import bird
from emulator.calico import config as calico
from emulator.cluster import controllers, nodes, render
from emulator.cluster.admit import admit_cluster
from emulator.cluster.dataplane import network_view
from emulator.cluster.store import ClusterState
from emulator.errors import SpecError
from emulator.model import calicoselector
from emulator.model.calico import RR_ANNOTATION, Pool
from emulator.model.calicoipam import CalicoIPAM, PoolNotUsable
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path("calico")
NEW_POOL = (ROOT / "topologies" / "manifests" / "new-pool.yaml").read_text()


def state(topology: str = "calico-pools.yaml") -> ClusterState:
    return ClusterState(admit_cluster(ROOT / "topologies" / topology))


def parse(text: str) -> list:
    return parse_documents(load_text(text, "<test>")).objects


def pool_doc(name: str, **spec) -> str:
    fields = ", ".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {str(v).lower()}" for k, v in spec.items())
    return f"apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {{{fields}}}\n"


def problems(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse(text)
    return str(info.value)


def pod(name: str, annotation: str | None = None, namespace: str = "default") -> str:
    meta = f"{{name: {name}, namespace: {namespace}" + (
        f", annotations: {{cni.projectcalico.org/ipv4pools: '{annotation}'}}" if annotation else "") + "}"
    return f"apiVersion: v1\nkind: Pod\nmetadata: {meta}\nspec: {{containers: [{{name: c, image: busybox}}]}}\n"


def ip_of(s: ClusterState, name: str, namespace: str = "default") -> str:
    return s.get("Pod", namespace, name).status.ip


def test_an_ippool_manifest_becomes_a_pool_with_calicos_defaults() -> None:
    [obj] = parse(NEW_POOL)
    assert (obj.meta.name, obj.pool) == ("new-pool", Pool("new-pool", "10.244.64.0/18", 28, "None", True))
    [obj] = parse(pool_doc("p", cidr="10.244.128.5/24", vxlanMode="CrossSubnet", disabled=True,
                           nodeSelector="!all()"))
    assert obj.pool == Pool("p", "10.244.128.0/24", 26, "VXLANCrossSubnet", False, True, "!all()")  # natOutgoing: false


def test_an_ippool_is_refused_field_by_field() -> None:
    text = problems(pool_doc("p", cidr="10.244.0.0/24", blockSize=19, vxlanMode="Sometimes",
                             nodeSelector="zone = 'a'", colour="red"))
    assert "spec.blockSize: must be at least 20, got 19" in text
    assert 'spec.vxlanMode: Unsupported value: "Sometimes": supported values: "Never", "Always", "CrossSubnet"' in text
    assert "spec.nodeSelector: Invalid value: \"zone = 'a'\": invalid selector" in text
    assert "spec.colour: unknown field 'colour'" in text
    assert "IPv4 pools only" in problems(pool_doc("p", cidr="fd00::/64"))
    assert "It must be equal to or greater than the block size (/26)" in problems(pool_doc("p", cidr="10.244.0.0/27"))
    assert "cannot both be enabled" in problems(pool_doc("p", cidr="10.244.0.0/24", vxlanMode="Always",
                                                         ipipMode="Always"))
    assert "missing required field 'cidr'" in problems(pool_doc("p", natOutgoing=True))


def test_the_cluster_refuses_what_its_nodes_cannot_run() -> None:
    s = state()
    cases = {
        "10.244.32.0/20": "overlaps with IPPool(default-ipv4-ippool) CIDR 10.244.0.0/18",
        "10.50.0.0/16": "must be inside the cluster's pod subnet 10.244.0.0/16",
    }
    for cidr, why in cases.items():
        with pytest.raises(SpecError, match=r"IPPool p: .*" + why.replace("(", r"\(").replace(")", r"\)")):
            controllers.apply(s, parse(pool_doc("p", cidr=cidr)))
    with pytest.raises(SpecError, match="set vxlanMode Never"):
        controllers.apply(s, parse(pool_doc("p", cidr="10.244.64.0/18", vxlanMode="Always")))
    with pytest.raises(SpecError, match="k8semu does not emulate IPIP"):
        controllers.apply(s, parse(pool_doc("p", cidr="10.244.64.0/18", ipipMode="Always")))
    with pytest.raises(SpecError, match="set vxlanMode Always or CrossSubnet"):
        controllers.apply(state("calico-vxlan.yaml"), parse(pool_doc("p", cidr="10.245.0.0/16")))
    with pytest.raises(SpecError, match="overlaps with IPPool"):  # two new pools in one batch
        controllers.apply(s, parse(NEW_POOL + "---\n" + pool_doc("q", cidr="10.244.96.0/20")))
    controllers.apply(s, parse(NEW_POOL))
    with pytest.raises(SpecError, match=r"spec.cidr: IPPool new-pool: field is immutable \(10.244.64.0/18\)"):
        controllers.apply(s, parse(pool_doc("new-pool", cidr="10.244.64.0/19", blockSize=28)))
    with pytest.raises(SpecError, match=r"spec.blockSize: IPPool new-pool: field is immutable \(28\)"):
        controllers.apply(s, parse(pool_doc("new-pool", cidr="10.244.64.0/18", blockSize=27)))
    with pytest.raises(SpecError, match="need spec.network.cni: calico"):
        controllers.apply(ClusterState(admit_cluster(ROOT / "topologies" / "flannel.yaml")), parse(NEW_POOL))


def test_the_spec_pools_are_stored_and_rendered_and_apply_changes_them() -> None:
    s = state()
    [pool] = render.objects(s, "IPPool", None)
    assert pool["metadata"]["name"] == "default-ipv4-ippool" and pool["metadata"]["resourceVersion"]
    assert pool["spec"] == {"allowedUses": ["Workload", "Tunnel"], "blockSize": 26, "cidr": "10.244.0.0/18",
                            "ipipMode": "Never", "natOutgoing": True, "nodeSelector": "all()", "vxlanMode": "Never"}
    assert controllers.apply(s, parse(NEW_POOL)) == ["ippool.crd.projectcalico.org/new-pool created"]
    off = pool_doc("default-ipv4-ippool", cidr="10.244.0.0/18", natOutgoing=True, disabled=True)
    assert controllers.apply(s, parse(off)) == ["ippool.crd.projectcalico.org/default-ipv4-ippool configured"]
    assert render.objects(s, "IPPool", None)[0]["spec"]["disabled"] is True
    assert [p.name for p in s.calico_ipam.pools] == ["default-ipv4-ippool", "new-pool"]
    assert s.calico_ipam.pools[0].disabled
    view = network_view(s)
    assert [(p.name, p.cidr, p.disabled) for p in view.pools] == [("default-ipv4-ippool", "10.244.0.0/18", True),
                                                                  ("new-pool", "10.244.64.0/18", False)]


def test_addresses_come_from_enabled_pools_or_those_a_pod_or_namespace_names() -> None:
    ipam = CalicoIPAM((Pool("a", "10.244.0.0/24", 28), Pool("b", "10.244.1.0/24", 28),
                       Pool("hidden", "10.244.2.0/24", 28, node_selector="!all()")))
    assert ipam.allocate("n1", "x") == "10.244.0.0"
    ipam.set_pools((Pool("a", "10.244.0.0/24", 28, disabled=True), *ipam.pools[1:]))
    assert ipam.allocate("n1", "y") == "10.244.1.0"  # n1's block of "a" hands out nothing more
    assert ipam.allocate("n1", "z", ("hidden",)) == "10.244.2.0"
    assert ipam.allocate("n2", "w", ("10.244.2.0/24",)) == "10.244.2.16"  # by CIDR, on a block of its own
    for asked in (("a",), ("nope",)):
        with pytest.raises(PoolNotUsable, match=rf"the given pool \({asked[0]}\) does not exist, or is not enabled"):
            ipam.allocate("n1", "v", asked)
    ipam.set_pools(())
    with pytest.raises(PoolNotUsable, match="no configured Calico pools for node n1"):
        ipam.allocate("n1", "u")


def test_a_pools_node_selector_and_allowed_uses_pick_its_nodes_and_uses() -> None:
    labels = {"n1": {"zone": "a"}, "n2": {"zone": "b"}}
    ipam = CalicoIPAM((Pool("a", "10.244.0.0/24", 28, node_selector="zone == 'a'"),
                       Pool("rest", "10.244.1.0/24", 28, node_selector="!has(zone) || zone != 'a'",
                            allowed_uses=("Workload",)),
                       Pool("tunnels", "10.244.2.0/24", 28, allowed_uses=("Tunnel",))), labels.get)
    assert ipam.allocate("n1", "x") == "10.244.0.0"
    assert ipam.allocate("n2", "y") == "10.244.1.0"
    assert ipam.allocate("n2", "t", use="Tunnel") == "10.244.2.0"
    assert ipam.allocate("n1", "z", ("rest",)) == "10.244.1.16"  # asked for: its nodeSelector is not asked
    with pytest.raises(PoolNotUsable, match=r"no pools match the required use \(Workload\)"):
        ipam.allocate("n1", "w", ("tunnels",))


def test_a_deleted_pools_blocks_go_once_empty() -> None:
    ipam = CalicoIPAM((Pool("a", "10.244.0.0/24", 28), Pool("b", "10.244.1.0/24", 28)))
    first = ipam.allocate("n1", "x")
    ipam.release(ipam.allocate("n2", "gone"))
    assert sorted(ipam.blocks) == ["10.244.0.0/28", "10.244.0.16/28"]  # a node keeps its last block, empty
    ipam.set_pools(ipam.pools[1:])
    assert sorted(ipam.blocks) == ["10.244.0.0/28"]  # n2's empty block went with the pool; n1's holds x
    ipam.release(first)
    assert ipam.blocks == {}  # n1's last block, but its pool is gone


def test_the_scheduler_gives_pods_addresses_from_the_pools_they_name() -> None:
    s = state()
    controllers.apply(s, parse(NEW_POOL + "---\n" + pool_doc("third", cidr="10.244.128.0/24", blockSize=29,
                                                             nodeSelector="!all()")))
    controllers.apply(s, parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: pinned, annotations: "
                               "{cni.projectcalico.org/ipv4pools: '[\"third\"]'}}\n"))
    controllers.apply(s, parse(pod("plain") + "---\n" + pod("named", '["new-pool"]') + "---\n"
                               + pod("in-ns", namespace="pinned") + "---\n" + pod("bad", '["nope"]') + "---\n"
                               + pod("notjson", "new-pool")))
    assert ip_of(s, "plain").startswith("10.244.0.")
    assert ip_of(s, "named").startswith("10.244.64.")
    assert ip_of(s, "in-ns", "pinned").startswith("10.244.128.")
    assert ip_of(s, "bad") == "" and ip_of(s, "notjson") == ""
    events = {(e.name, e.reason): e.message for e in s.events.all()}
    assert events[("bad", "FailedScheduling")] == "the given pool (nope) does not exist, or is not enabled"
    assert events[("notjson", "FailedScheduling")].startswith("failed to parse 'new-pool' as JSON")
    controllers.delete(s, "IPPool", "", "new-pool")
    assert [p.name for p in s.calico_pools()] == ["default-ipv4-ippool", "third"]
    assert ip_of(s, "named").startswith("10.244.64.")  # a pod keeps its address; its block stays until it goes


def test_the_nodes_follow_the_pools(golden) -> None:
    s = state()
    controllers.apply(s, parse(NEW_POOL))
    controllers.apply(s, parse(pod("a")))
    cfg = s.config
    view = network_view(s)
    text = bird.config(calico.effective(cfg, view), view.bgp, cfg.node("worker-1"), [])
    assert "if ( net ~ 10.244.64.0/18 ) then { accept; }" in text
    golden(str(GOLDEN / "nat-sets-update.ipset"), calico.nat_sets_update(calico.effective(cfg, view)))
    owner = s.get("Pod", "default", "a").status.node
    other = next(n.name for n in cfg.nodes if n.name != owner)
    assert calico.expected_routes(cfg, view, other) == {"10.244.0.0/26": cfg.node(owner).ip}
    controllers.apply(s, parse(pool_doc("default-ipv4-ippool", cidr="10.244.0.0/18", disabled=True)))
    controllers.delete(s, "IPPool", "", "default-ipv4-ippool")
    gone = network_view(s)
    assert [p.name for p in gone.pools] == ["new-pool"] and gone.blocks  # the block stays, holding a's address
    assert calico.expected_routes(cfg, gone, other) == {}  # exported by no BIRD once its pool is gone
    assert "10.244.0.0/18" not in calico.nat_sets_update(calico.effective(cfg, gone))


# -- BGPConfiguration, BGPPeer and the sessions they make ------------------------------------------
def bgp_doc(kind: str, name: str, **spec) -> str:
    return pool_doc(name, **spec).replace("kind: IPPool", f"kind: {kind}")


def sessions(s: ClusterState) -> dict[str, list[tuple[str, bool, bool]]]:
    """node -> its sessions as (protocol, passive, rr client)."""
    out: dict[str, list] = {}
    for x in network_view(s).bgp.sessions:
        out.setdefault(x.node, []).append((x.name, x.passive, x.rr_client))
    return out


def test_calicos_selectors_parse_and_select_as_calico_does() -> None:
    labels = {"route-reflector": "true", "zone": "a", "kubernetes.io/hostname": "worker-1"}
    for text, want in (("all()", True), ("!all()", False), ("route-reflector == 'true'", True),
                       ("has(zone) && zone in {'a', 'b'}", True), ("zone not in {'a'}", False),
                       ("!has(zone) || kubernetes.io/hostname starts with \"work\"", True),
                       ("(zone == 'b' || zone == 'a') && zone != 'c'", True), ("zone contains 'x'", False)):
        assert calicoselector.parse(text)(labels) is want, text
    assert calicoselector.parse("")(labels) is False  # no selector selects nothing
    for bad in ("zone = 'a'", "zone == a", "(all()", "zone ~ 'a'", "(" * 2000 + "all()" + ")" * 2000, "x" * 5000):
        assert "invalid selector" in calicoselector.check(bad), bad


def test_bgp_objects_are_refused_field_by_field_and_by_the_cluster() -> None:
    text = problems(bgp_doc("BGPPeer", "p", node="worker-1", nodeSelector="all()", peerSelector="x = 'y'"))
    assert "node and nodeSelector cannot both be set" in text and "invalid selector" in text
    assert "one of peerIP or peerSelector is required" in problems(bgp_doc("BGPPeer", "p", node="worker-1"))
    assert "required with peerIP" in problems(bgp_doc("BGPPeer", "p", peerIP="172.18.0.3"))
    assert "an IPv4 address" in problems(bgp_doc("BGPPeer", "p", peerIP="172.18.0.3:179", asNumber=64512))
    assert 'Unsupported value: "Loud"' in problems(bgp_doc("BGPConfiguration", "default", logSeverityScreen="Loud"))
    s = state("calico.yaml")
    with pytest.raises(SpecError) as info:
        controllers.apply(s, parse(bgp_doc("BGPPeer", "p", node="nope", peerIP="10.9.9.9", asNumber=64512)
                                   + "---\n" + bgp_doc("BGPConfiguration", "node.worker-1", asNumber=64513)))
    assert "'nope' is not a node" in str(info.value) and "outside the underlay (172.18.0.0/24)" in str(info.value)
    assert "reads the BGPConfiguration named default only" in str(info.value)
    with pytest.raises(SpecError, match="need spec.network.cni: calico"):
        controllers.apply(ClusterState(admit_cluster(ROOT / "topologies" / "flannel.yaml")),
                          parse(bgp_doc("BGPPeer", "p", peerSelector="all()")))


def test_the_mesh_and_bgppeers_make_confds_sessions() -> None:
    s = state("calico.yaml")
    mesh = sessions(s)
    assert mesh["worker-1"] == [("Mesh_172_18_0_2", False, False), ("Mesh_172_18_0_4", True, False)]
    controllers.apply(s, parse(bgp_doc("BGPConfiguration", "default", nodeToNodeMeshEnabled=False)))
    assert sessions(s) == {}
    [cfg] = render.objects(s, "BGPConfiguration", None)
    assert cfg["spec"] == {"nodeToNodeMeshEnabled": False}  # as written: asNumber back to Calico's default
    # workers peer with the control-plane node, which is no reflector: iBGP passes nothing on
    controllers.apply(s, parse(bgp_doc("BGPPeer", "to-cp", nodeSelector="!has(node-role.kubernetes.io/control-plane)",
                                       peerSelector="has(node-role.kubernetes.io/control-plane)")))
    view = network_view(s).bgp
    assert sessions(s) == {"control-plane": [("Node_172_18_0_3", False, False), ("Node_172_18_0_4", False, False)],
                           "worker-1": [("Node_172_18_0_2", False, False)], "worker-2": [("Node_172_18_0_2", False, False)]}
    assert view.reach("worker-1") == {"control-plane"} and view.reach("control-plane") == {"worker-1", "worker-2"}
    # Calico's route reflector docs, with kubectl: annotate, label; the peering; worker-2 learns worker-1's routes
    nodes.set_metadata(s, "control-plane", {"route-reflector": "true"}, {RR_ANNOTATION: "244.0.0.1"}, {})
    controllers.apply(s, parse(bgp_doc("BGPPeer", "rr", nodeSelector="all()", peerSelector="route-reflector == 'true'")))
    view = network_view(s).bgp
    assert sessions(s)["control-plane"] == [("Node_172_18_0_3", False, True), ("Node_172_18_0_4", False, True)]
    assert view.reach("worker-1") == {"control-plane", "worker-2"}
    assert view.reach("worker-1", gone=frozenset({"control-plane"})) == frozenset()


def test_a_peering_that_cannot_come_up_is_not_waited_for() -> None:
    s = state("calico.yaml")
    controllers.apply(s, parse(bgp_doc("BGPConfiguration", "default", nodeToNodeMeshEnabled=False) + "---\n"
                               + bgp_doc("BGPPeer", "one-way", node="worker-1", peerIP="172.18.0.4", asNumber=65000)))
    view = network_view(s).bgp
    assert [x.name for x in view.of("worker-1")] == ["Node_172_18_0_4"] and view.of("worker-2") == []
    assert view.established == frozenset()  # another AS, and worker-2 has no session back: Active, as on Calico
    controllers.apply(s, parse(bgp_doc("BGPPeer", "one-way", node="worker-1", peerIP="172.18.0.4", asNumber=64512)))
    assert network_view(s).bgp.established == {("worker-1", "worker-2"), ("worker-2", "worker-1")}  # reversed


def test_two_reflectors_of_one_cluster_drop_each_others_reflections() -> None:
    s = state("calico.yaml")
    for node in ("control-plane", "worker-1"):
        nodes.set_metadata(s, node, {"route-reflector": "true"}, {RR_ANNOTATION: "244.0.0.1"}, {})
    controllers.apply(s, parse(bgp_doc("BGPConfiguration", "default", nodeToNodeMeshEnabled=False) + "---\n"
                               + bgp_doc("BGPPeer", "rr", nodeSelector="all()", peerSelector="route-reflector == 'true'")))
    view = network_view(s).bgp
    pairs = {(x.node, x.peer): x.rr_client for x in view.sessions}
    assert pairs[("control-plane", "worker-1")] is False and pairs[("control-plane", "worker-2")] is True
    assert view.reach("worker-2") == {"control-plane", "worker-1"}
    # a route the control-plane node learns from worker-1 (a reflector of its cluster, a non-client) goes to clients only
    assert view.reach("worker-1") == {"control-plane", "worker-2"}


def test_kubectl_label_and_annotate_change_a_node_within_the_rules() -> None:
    s = state("calico.yaml")
    assert nodes.set_metadata(s, "worker-2", {"disk": "ssd"}, {"note": "x"}, {})
    obj = next(n for n in render.objects(s, "Node", None) if n["metadata"]["name"] == "worker-2")
    assert obj["metadata"]["labels"]["disk"] == "ssd" and obj["metadata"]["annotations"]["note"] == "x"
    assert obj["metadata"]["labels"]["kubernetes.io/hostname"] == "worker-2"
    assert obj["metadata"]["annotations"]["projectcalico.org/IPv4Address"] == "172.18.0.4/24"
    controllers.apply(s, parse(pod("ssd").replace("spec: {", "spec: {nodeSelector: {disk: ssd}, ")))
    assert s.get("Pod", "default", "ssd").status.node == "worker-2"
    nodes.set_metadata(s, "worker-2", {}, {}, {})  # the kubelet's own labels stay
    assert s.node_labels_of("worker-2")["kubernetes.io/hostname"] == "worker-2" and "disk" not in s.node_labels_of("worker-2")
    with pytest.raises(SpecError, match="written by the node's CNI agent"):
        nodes.set_metadata(s, "worker-2", {}, {"projectcalico.org/IPv4Address": "1.2.3.4/24"},
                           {"projectcalico.org/IPv4Address": "172.18.0.4/24"})
    with pytest.raises(SpecError, match="a route reflector cluster ID is an IPv4 address"):
        nodes.set_metadata(s, "worker-2", {}, {RR_ANNOTATION: "x"}, {})
    with pytest.raises(SpecError, match="name part must consist"):
        nodes.set_metadata(s, "worker-2", {"bad key!": "x"}, {}, {})


def test_a_node_write_may_change_unschedulable_labels_and_annotations_only() -> None:
    base = {"metadata": {"name": "w", "labels": {"a": "1"}}, "spec": {"podCIDR": "10.244.1.0/24"}}
    wanted = {"metadata": {"name": "w", "labels": {"a": "1", "b": "2"}, "annotations": {"n": "x"}},
              "spec": {"podCIDR": "10.244.1.0/24", "unschedulable": True}}
    assert nodewrites.change("w", base, wanted) == (True, {"a": "1", "b": "2"}, {"n": "x"})
    for bad, code in (({**wanted, "spec": {"podCIDR": "10.9.0.0/24"}}, 422), ([], 400),
                      ({**wanted, "metadata": {"name": "w", "labels": {"a": 1}}}, 400)):
        with pytest.raises(ApiError) as info:
            nodewrites.change("w", base, bad)
        assert info.value.code == code


def test_a_pod_no_node_fits_waits_pending_until_a_node_is_labelled() -> None:
    s = state("calico.yaml")
    controllers.apply(s, parse(pod("ssd").replace("spec: {", "spec: {nodeSelector: {disk: ssd}, ")))
    rec = s.get("Pod", "default", "ssd")
    assert rec.status.node == "" and rec.status.reason == "Unschedulable"
    [event] = [e for e in s.events.all() if e.name == "ssd" and e.reason == "FailedScheduling"]
    assert "didn't match Pod's node affinity/selector" in event.message
    nodes.set_metadata(s, "worker-1", {"disk": "ssd"}, {}, {})
    controllers.reconcile(s)  # what the manager does after a node write
    assert rec.status.node == "worker-1"


def test_a_daemonset_follows_a_nodes_labels_as_upstreams_complex_daemon_test() -> None:
    """daemon_set.go "should run and stop complex daemon": a node labelled blue gets the
    DaemonSet's pod, relabelled green loses it."""
    s = state("calico.yaml")
    controllers.apply(s, parse("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n"
                               "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n"
                               "    spec: {nodeSelector: {color: blue}, containers: [{name: c, image: busybox}]}\n"))

    def daemons() -> list[tuple[str, bool]]:
        return [(r.status.node, r.deleting) for r in s.pods() if r.obj.meta.name.startswith("d-")]
    assert daemons() == []
    nodes.set_metadata(s, "worker-1", {"color": "blue"}, {}, {})
    controllers.reconcile(s)
    assert daemons() == [("worker-1", False)]
    nodes.set_metadata(s, "worker-1", {"color": "green"}, {}, {})
    controllers.reconcile(s)
    assert daemons() == [("worker-1", True)]  # terminating
