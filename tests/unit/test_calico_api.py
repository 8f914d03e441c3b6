"""Calico's CRDs through the API (issue #14): the objects rendered from the spec and the IPAM
(names, allocations and attributes, affinities, BGP settings with and without reflectors), and
the group served, discovered and documented on ``cni: calico`` clusters only."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from emulator.api import openapi, resources, tables
from emulator.api.handlers import Handlers
from emulator.api.status import ApiError
from emulator.cluster import render
from emulator.cluster.admit import admit_cluster
from emulator.cluster.store import ClusterState, Record
from emulator.model.calico import REFLECTOR_PEER, BGPConfig

ROOT = Path(__file__).resolve().parents[2]


def test_blocks_show_each_address_at_its_ordinal_with_who_holds_it() -> None:
    state = ClusterState(admit_cluster(ROOT / "topologies" / "calico-vxlan.yaml"))
    state.kinds.setdefault("Pod", {})[("default", "web")] = Record(None, "uid-web", 0.0, 7)
    assert state.ipam["worker-1"].allocate("default/web") == "10.244.0.65"  # after the tunnel address
    state.ipam["worker-1"].allocate("default/gone")  # its pod record already deleted
    blocks = render.objects(state, "IPAMBlock", None)
    assert [b["metadata"]["name"] for b in blocks] == ["10-244-0-0-26", "10-244-0-128-26", "10-244-0-64-26"]
    w1 = blocks[2]["spec"]
    assert (w1["cidr"], w1["affinity"], w1["strictAffinity"], w1["deleted"]) == ("10.244.0.64/26", "host:worker-1",
                                                                                  False, False)
    assert w1["allocations"][:4] == [0, 1, 2, None] and len(w1["allocations"]) == 64
    assert w1["attributes"] == [
        {"handle_id": "vxlan-tunnel-addr-worker-1", "secondary": {"node": "worker-1", "type": "vxlanTunnelAddress"}},
        {"handle_id": "k8s-pod-network.uid-web", "secondary": {"namespace": "default", "node": "worker-1",
                                                               "pod": "web", "timestamp": "1970-01-01T00:00:00Z"}},
        {"handle_id": "default/gone", "secondary": {"node": "worker-1"}}]
    assert w1["unallocated"] == list(range(3, 64))
    assert "k8s-pod-network.uid-web" in {h["metadata"]["name"] for h in render.objects(state, "IPAMHandle", None)}
    state.ipam["worker-1"].release("10.244.0.65")
    again = render.objects(state, "IPAMBlock", None)[2]["spec"]
    assert again["allocations"][1] is None and again["unallocated"][-1] == 1  # freed: to the end of the list
    affinities = render.objects(state, "BlockAffinity", None)
    assert [(a["metadata"]["name"], a["spec"]["node"], a["spec"]["state"], a["spec"]["deleted"]) for a in affinities] \
        == [("control-plane-10-244-0-0-26", "control-plane", "confirmed", "false"),
            ("worker-1-10-244-0-64-26", "worker-1", "confirmed", "false"),
            ("worker-2-10-244-0-128-26", "worker-2", "confirmed", "false")]
    uid = affinities[1]["metadata"]["uid"]
    assert render.objects(state, "BlockAffinity", None)[1]["metadata"]["uid"] == uid  # stable between renderings
    [pool] = render.objects(state, "IPPool", None)
    assert (pool["spec"]["vxlanMode"], pool["spec"]["ipipMode"]) == ("Always", "Never")
    handles = {h["metadata"]["name"]: h["spec"] for h in render.objects(state, "IPAMHandle", None)}
    assert handles["vxlan-tunnel-addr-worker-1"] == {"block": {"10.244.0.64/26": 1}, "deleted": False,
                                                     "handleID": "vxlan-tunnel-addr-worker-1"}
    assert len(handles) == 3  # the tunnels: web's address was released above, "gone" has no pod record
    [felix] = render.objects(state, "FelixConfiguration", None)
    assert felix["spec"]["defaultEndpointToHostAction"] == "Return" and felix["spec"]["vxlanVNI"] == 4096
    [ipam] = render.objects(state, "IPAMConfig", None)
    assert (ipam["metadata"]["name"], ipam["spec"]["strictAffinity"]) == ("default", False)
    [info] = render.objects(state, "ClusterInformation", None)
    assert (info["metadata"]["name"], info["spec"]["calicoVersion"], info["spec"]["clusterType"]) == \
        ("default", "v3.29.1", "k8s,bgp,kubeadm,kdd")
    assert len(info["spec"]["clusterGUID"]) == 32 and info["spec"]["datastoreReady"] is True


def test_bgp_settings_follow_the_mesh_or_the_reflectors() -> None:
    cfg = admit_cluster(ROOT / "topologies" / "calico.yaml")
    mesh = ClusterState(cfg)
    assert [b["spec"] for b in render.objects(mesh, "BGPConfiguration", None)] == [
        {"asNumber": 64512, "logSeverityScreen": "Info", "nodeToNodeMeshEnabled": True}]
    assert render.objects(mesh, "BGPPeer", None) == []
    reflected = ClusterState(replace(cfg, calico=replace(cfg.calico, bgp=BGPConfig(64513, ("control-plane",)))))
    [bgp] = render.objects(reflected, "BGPConfiguration", None)
    assert (bgp["spec"]["asNumber"], bgp["spec"]["nodeToNodeMeshEnabled"]) == (64513, False)
    [peer] = render.objects(reflected, "BGPPeer", None)
    assert peer["metadata"]["name"] == REFLECTOR_PEER
    assert peer["spec"] == {"nodeSelector": "all()", "peerSelector": "route-reflector == 'true'"}
    node = next(n for n in render.objects(reflected, "Node", None) if n["metadata"]["name"] == "control-plane")
    assert node["metadata"]["annotations"]["projectcalico.org/RouteReflectorClusterID"] == "244.0.0.1"


def test_the_spec_labels_the_route_reflectors_as_calicos_docs_do() -> None:
    cfg = admit_cluster(ROOT / "topologies" / "calico-rr.yaml")
    labelled = [n.name for n in cfg.nodes if n.all_labels().get("route-reflector") == "true"]
    assert labelled == list(cfg.calico.bgp.route_reflectors) == ["control-plane"]


def test_calicos_group_is_served_on_calico_clusters_only() -> None:
    assert "crd.projectcalico.org" in resources.groups("calico")
    assert "crd.projectcalico.org" not in resources.groups("openflow")
    assert "crd.projectcalico.org" not in resources.groups("flannel")
    assert resources.find("crd.projectcalico.org", "v1", "ipamblocks", "calico").kind == "IPAMBlock"
    assert resources.find("crd.projectcalico.org", "v1", "ipamblocks", "flannel") is None
    aggregated = resources.aggregated_discovery(False, "apidiscovery.k8s.io/v2", "calico")
    calico = next(g for g in aggregated["items"] if g["metadata"]["name"] == "crd.projectcalico.org")
    assert sorted(r["resource"] for r in calico["versions"][0]["resources"]) == [
        "bgpconfigurations", "bgppeers", "blockaffinities", "clusterinformations", "felixconfigurations", "ipamblocks", "ipamconfigs",
        "ipamhandles", "ippools"]
    verbs = {r["resource"]: r["verbs"] for r in calico["versions"][0]["resources"]}
    assert all(r["scope"] == "Cluster" for r in calico["versions"][0]["resources"])
    for written in ("ippools", "bgpconfigurations", "bgppeers"):
        assert verbs.pop(written) == ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    assert all(v == ["get", "list", "watch"] for v in verbs.values())  # views of IPAM and of what calico-node runs
    try:
        Handlers(None, "openflow").route("/apis/crd.projectcalico.org/v1/ippools")
        raise AssertionError("routed on an openflow cluster")
    except ApiError as exc:
        assert exc.code == 404
    assert Handlers(None, "calico").route("/apis/crd.projectcalico.org/v1/ippools").resource.kind == "IPPool"


def test_calicos_openapi_document_explains_its_kinds_and_refs_resolve() -> None:
    assert openapi.group_version_document("apis/crd.projectcalico.org/v1", "openflow") is None
    doc = openapi.group_version_document("apis/crd.projectcalico.org/v1", "calico")
    schemas = doc["components"]["schemas"]
    block = schemas["org.projectcalico.crd.v1.IPAMBlock"]
    assert block["x-kubernetes-group-version-kind"] == [{"group": "crd.projectcalico.org", "kind": "IPAMBlock",
                                                         "version": "v1"}]
    assert "allocations" in block["properties"]["spec"]["required"]
    assert set(openapi.refs(schemas)) <= set(schemas)
    assert "apis/crd.projectcalico.org/v1" in openapi.root_document("calico")["paths"]
    assert "apis/crd.projectcalico.org/v1" not in openapi.root_document("openflow")["paths"]
    # kubectl validates on the server (fieldValidation) and the server says why a write is refused
    patch = doc["paths"]["/apis/crd.projectcalico.org/v1/ippools/{name}"]["patch"]
    assert {"name": "fieldValidation"}.items() <= patch["parameters"][2].items()


def test_kubectl_prints_name_and_creation_time_as_for_any_crd_without_columns() -> None:
    obj = {"metadata": {"name": "10-244-0-0-26", "creationTimestamp": "2026-12-07T10:00:00Z"}}
    table = tables.as_table("IPAMBlock", [obj])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["10-244-0-0-26", "2026-12-07T10:00:00Z"]


def test_the_crds_are_calicos_on_calico_and_none_elsewhere() -> None:
    calico = ClusterState(admit_cluster(ROOT / "topologies" / "calico.yaml"))
    crds = render.objects(calico, "CustomResourceDefinition", None)
    assert [c["metadata"]["name"] for c in crds] == [f"{p}.crd.projectcalico.org" for p in (
        "bgpconfigurations", "bgppeers", "blockaffinities", "clusterinformations", "felixconfigurations", "ipamblocks", "ipamconfigs",
        "ipamhandles", "ippools")]
    pools = crds[-1]
    assert pools["spec"]["names"] == {"kind": "IPPool", "listKind": "IPPoolList", "plural": "ippools",
                                      "singular": "ippool"}
    schema = pools["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["metadata"] == {"type": "object"} and "cidr" in schema["properties"]["spec"]["properties"]
    assert {c["type"]: c["status"] for c in pools["status"]["conditions"]} == {"NamesAccepted": "True",
                                                                               "Established": "True"}
    openflow = ClusterState(admit_cluster(ROOT / "topologies" / "default.yaml"))
    assert render.objects(openflow, "CustomResourceDefinition", None) == []
    assert resources.find("apiextensions.k8s.io", "v1", "customresourcedefinitions", "openflow") is not None
