"""IPPools written through the API on ``cni: calico`` (issue #14): the manifest checked field by
field, the cluster's refusals (overlap, outside the pod subnet, another encapsulation, IPIP, a
changed cidr or blockSize, another CNI), the pools an address comes from (disabled pools, the
``cni.projectcalico.org/ipv4pools`` annotation of a pod or its namespace, a pool that does not
exist), a deleted pool's blocks, and what the nodes get of the pools (BIRD's filters, the routes
waited for, Felix's NAT sets swapped in)."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.calico import bird
from emulator.calico import config as calico
from emulator.cluster import controllers, render
from emulator.cluster.admit import admit_cluster
from emulator.cluster.dataplane import network_view
from emulator.cluster.store import ClusterState
from emulator.errors import SpecError
from emulator.model.calico import Pool
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
                             nodeSelector="zone == 'a'", colour="red"))
    assert "spec.blockSize: must be at least 20, got 19" in text
    assert 'spec.vxlanMode: Unsupported value: "Sometimes": supported values: "Never", "Always", "CrossSubnet"' in text
    assert "spec.nodeSelector: Invalid value: \"zone == 'a'\": k8semu evaluates the nodeSelectors all()" in text
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
    with pytest.raises(Exception, match="no enabled IP pool"):
        ipam.allocate("n1", "u")


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
    text = bird.config(calico.effective(cfg, view), cfg.nodes, cfg.node("worker-1"), [])
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
