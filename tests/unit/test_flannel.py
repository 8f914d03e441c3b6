"""Flannel's data plane as files and commands (emulator/flannel): the conflist, subnet.env,
flannel.1 and its neighbours, and flanneld's chains for the course's three-node cluster
(topologies/flannel.yaml), as golden files; the spec's data-plane fields; the CNI plugins'
environment; kube-proxy's jumps in one restore; a node's NetworkPolicy sets and chains."""
from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from emulator.cli import plan
from emulator.cluster import nodedaemons, render
from emulator.cluster.admit import admit_cluster
from emulator.cluster.store import ClusterState
from emulator.flannel import config as flannel
from emulator.kubeproxy import iptables
from emulator.kubeproxy import node as kube_proxy
from emulator.model import images
from emulator.model.netview import EndpointView, PolicyView, RuleView, ServicePortView
from emulator.model.pod import PodSpec
from emulator.netpolicy import iptables as netpolicy
from emulator.runtime import cni
from emulator.runtime.cni import Attachment
from emulator.runtime.proxier import SyncBucket, stale_udp

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "flannel"


def cluster():
    return admit_cluster(ROOT / "topologies" / "flannel.yaml")


def test_the_flannel_topology_selects_the_kernel_data_plane() -> None:
    cfg = cluster()
    assert (cfg.cni, cfg.kube_proxy, cfg.flannel_backend, cfg.min_sync_period) == ("flannel", "iptables", "vxlan", 1.0)
    assert cfg.kernel_dataplane and cfg.pod_mtu == 1450
    assert replace(cfg, flannel_backend="host-gw").pod_mtu == 1500  # nothing encapsulated


def test_the_default_cluster_stays_openflow() -> None:
    cfg = admit_cluster(ROOT / "topologies" / "default.yaml")
    assert (cfg.cni, cfg.kube_proxy, cfg.kernel_dataplane) == ("openflow", "", False)


def test_conflist_golden(golden) -> None:
    cfg = cluster()
    text = flannel.conflist(cfg, cfg.node("worker-1"), "/run/k8semu/flannel/nodes/worker-1/var/lib/cni/networks")
    golden(GOLDEN / "10-flannel.conflist", text)
    conf = json.loads(text)
    bridge = conf["plugins"][0]
    assert (conf["name"], bridge["bridge"], bridge["mtu"]) == ("cbr0", "cni0", 1450)
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]]


def test_subnet_env_golden(golden) -> None:
    cfg = cluster()
    golden(GOLDEN / "subnet.env", flannel.subnet_env(cfg, cfg.node("worker-1")))


def test_vxlan_and_fdb_golden(golden) -> None:
    cfg = cluster()
    node = cfg.node("worker-1")
    golden(GOLDEN / "worker-1.ip-batch", "\n".join(flannel.vxlan_commands(cfg, node) + flannel.fdb_commands(cfg, node)) + "\n")


def test_host_gw_routes_via_the_nodes() -> None:
    cfg = replace(cluster(), flannel_backend="host-gw")
    node = cfg.node("worker-1")
    assert flannel.vxlan_commands(cfg, node) == ["route add 10.244.0.0/24 via 172.18.0.2 dev eth0",
                                                 "route add 10.244.2.0/24 via 172.18.0.4 dev eth0"]
    assert flannel.fdb_commands(cfg, node) == []


def test_masquerade_rules_golden(golden) -> None:
    """flanneld's rules (pkg/trafficmngr/iptables MasqRules and ForwardRules) in restore form."""
    cfg = cluster()
    golden(GOLDEN / "worker-1.flannel.iptables", flannel.masquerade_rules(cfg, cfg.node("worker-1")))


def test_cni_args_name_the_pod_and_ask_host_local_for_its_address() -> None:
    a = Attachment("/run/netns/x", "flannel_worker-1", "default", "web-1", "uid-1", "10.244.1.7")
    assert a.args() == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;"
                        "K8S_POD_INFRA_CONTAINER_ID=uid-1;K8S_POD_UID=uid-1;IP=10.244.1.7")


def test_kube_proxys_jumps_are_one_restore_leaving_them_in_jumps_order() -> None:
    text = kube_proxy.jumps_restore()
    assert text.count("COMMIT") == 2 and text.startswith("*nat\n")
    for table, chain, rule in iptables.JUMPS:
        assert f"-I {chain} 1 {rule}\n" in text
    inserts = [line for line in text.splitlines() if line.startswith("-I INPUT")]
    assert inserts[0].endswith("-j KUBE-FIREWALL") and inserts[-1].endswith("-j KUBE-PROXY-FIREWALL")  # reversed


POLICIES = PolicyView(
    rules=(RuleView(7, "default/web-allow ingress[0]", "Ingress", (("10.244.1.3", "worker-1"), ("10.244.2.3", "worker-2")),
                    ("10.244.2.2/32", "192.168.0.0/17"), (("TCP", 80, None), ("TCP", 8000, 8080), ("SCTP", 9, None))),
           RuleView(8, "default/client-out egress[0]", "Egress", (("10.244.1.9", "worker-1"),), ("0.0.0.0/0",),
                    (("UDP", 53, None),)),
           RuleView(9, "default/none ingress[0]", "Ingress", (("10.244.1.3", "worker-1"),), ())),
    isolated_ingress=("10.244.1.3", "10.244.1.4", "10.244.2.3"), isolated_egress=("10.244.1.9",))


def test_network_policy_rules_golden(golden) -> None:
    """One node's sets and chains: only its own pods' rules, each port a rule, SCTP left out,
    a rule that admits anyone without a peer set, a rule with no peer written not at all."""
    node = netpolicy.render(POLICIES, "worker-1", "10.244.1.1", frozenset({"10.244.1.3", "10.244.1.4", "10.244.1.9"}))
    golden(GOLDEN / "worker-1.policy.ipset", node.ipsets)
    golden(GOLDEN / "worker-1.policy.iptables", node.rules)
    assert node.sets == {"k8semu-iso-egress", "k8semu-iso-ingress", "k8semu-r7-pods", "k8semu-r7-peers", "k8semu-r8-pods"}
    other = netpolicy.render(POLICIES, "worker-2", "10.244.2.1", frozenset({"10.244.2.3"}))
    assert "add k8semu-r7-pods 10.244.2.3 -exist" in other.ipsets and "k8semu-r8" not in other.ipsets


def test_network_policy_comments_cannot_break_out() -> None:
    bad = PolicyView((RuleView(1, 'ns/p" -j ACCEPT ingress[0]', "Ingress", (("10.244.1.3", "w"),), ("0.0.0.0/0",)),))
    with pytest.raises(ValueError):
        netpolicy.render(bad, "w", "10.244.1.1", frozenset({"10.244.1.3"}))


def test_stale_udp_entries_are_those_kube_proxy_deletes() -> None:
    ep = lambda ip: EndpointView(ip, 53, "worker-1")  # noqa: E731
    dns = ServicePortView(1, "kube-system", "kube-dns", "dns", "UDP", "10.96.0.10", 53, endpoints=(ep("10.244.1.2"), ep("10.244.2.2")))
    tcp = replace(dns, id=2, protocol="TCP", port_name="dns-tcp")
    lost = replace(dns, endpoints=(ep("10.244.2.2"),))
    assert stale_udp([dns, tcp], [lost, replace(tcp, endpoints=())]) == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.1.2"]]
    empty = replace(dns, endpoints=(), node_port=30053)
    assert stale_udp([empty], [dns]) == [["-D", "-p", "udp", "--orig-dst", "10.96.0.10"]]
    assert stale_udp([replace(dns, node_port=30053)], [replace(lost, node_port=30053)])[-1] == [
        "-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.244.1.2"]
    assert stale_udp([dns], []) == [["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.1.2"],
                                    ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.2.2"]]


def test_a_flannel_cluster_has_kube_proxy_and_flannels_objects_not_the_openflow_agent() -> None:
    cfg = cluster()
    kinds = [(type(o).__name__, o.meta.namespace, o.meta.name) for o in nodedaemons.node_daemons(cfg)]
    assert kinds == [("ConfigMap", "kube-system", "kube-proxy"), ("DaemonSet", "kube-system", "kube-proxy"),
                     ("Namespace", "", "kube-flannel"), ("ConfigMap", "kube-flannel", "kube-flannel-cfg"),
                     ("DaemonSet", "kube-flannel", "kube-flannel-ds")]
    conf = yaml.safe_load(nodedaemons.kube_proxy_config(cfg))
    assert (conf["mode"], conf["clusterCIDR"], conf["iptables"]["minSyncPeriod"]) == ("iptables", "10.244.0.0/16", "1s")
    net = json.loads(nodedaemons.flannel(cfg)[1].data["net-conf.json"])
    assert net == {"Network": "10.244.0.0/16", "EnableNFTables": False, "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472}}
    node = render.node_object(cfg.node("worker-1"), ClusterState(cfg))
    assert node["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"] == \
        '{"VNI":1,"VtepMAC":"0a:5a:ac:12:00:03"}'
    assert node["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"] == "172.18.0.3"


@pytest.mark.parametrize("spec", ["services-flannel", "dns-flannel"])
def test_kube_proxy_rules_of_a_fixed_cluster_state_golden(spec: str, golden) -> None:
    """Every node's full kube-proxy sync for the lab's cluster as ``plan`` simulates it (seeded
    pod names, allocated addresses): iptables mode for the Services lab, nftables for the DNS
    lab's (what ``k8semu plan --show flows`` prints)."""
    out = io.StringIO()
    assert plan.plan(str(ROOT / "topologies" / f"{spec}.yaml"), "flows", out) == 0
    golden(GOLDEN / f"{spec}.rules", out.getvalue())


def test_syncs_come_in_bursts_of_two_then_one_per_min_sync_period(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("emulator.runtime.proxier.time.monotonic", lambda: clock[0])
    bucket = SyncBucket(1.0)
    for _ in range(2):  # a full bucket: two syncs at once (burstSyncs)
        assert bucket.wait() == 0
        bucket.take()
    assert bucket.wait() == pytest.approx(1.0)
    clock[0] += 0.25
    assert bucket.wait() == pytest.approx(0.75)
    clock[0] += 10
    assert bucket.wait() == 0 and bucket.tokens == 2  # refilled, never beyond the burst
    unlimited = SyncBucket(0.0)
    for _ in range(5):
        unlimited.take()
        assert unlimited.wait() == 0


def test_every_daemon_image_has_a_stand_in() -> None:
    """Each DaemonSet a cluster of either data plane installs runs a known image."""
    for cfg in (cluster(), admit_cluster(ROOT / "topologies" / "default.yaml")):
        for obj in nodedaemons.node_daemons(cfg):
            for c in getattr(getattr(obj, "template", None), "spec", PodSpec(())).containers:
                assert images.lookup(c.image, {}).stand_in, c.image


def test_cni_results_are_cached_as_libcni_does_and_deleted_from_the_cache_after_a_crash(tmp_path, monkeypatch) -> None:
    """ADD leaves libcni's cniCacheV1 entry in the node's /var/lib/cni/results; after a crash,
    delete_cached runs DEL from the entry alone (plugins in reverse, the cached result, the
    cached CNI_ARGS) and removes it."""
    conf = {"cniVersion": "1.0.0", "name": "cbr0", "plugins": [{"type": "bridge"}, {"type": "portmap",
                                                                                     "capabilities": {"portMappings": True}}]}
    calls: list[tuple] = []
    result = {"ips": [{"address": "10.244.1.5/24"}]}

    def invoke(self, command, a, plugin, network, prev):
        calls.append((command, plugin["type"], a.args(), a.port_mappings, prev, a.node_netns, a.netns_path))
        return result if command == "ADD" else (prev or {})
    monkeypatch.setattr(cni.Plugins, "_invoke", invoke)
    results = tmp_path / "nodes" / "worker-1" / cni.RESULTS
    plugins = cni.Plugins({"worker-1": conf}, results={"worker-1": results})
    a = Attachment("/run/netns/gone", "k-worker-1", "demo", "web-1", "uid-1", "10.244.1.5",
                   ({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},))
    assert plugins.add_one("worker-1", a) == result
    entry = json.loads((results / "cbr0-uid-1-eth0").read_text())
    assert (entry["kind"], entry["containerId"], entry["ifName"], entry["networkName"]) == \
        ("cniCacheV1", "uid-1", "eth0", "cbr0")
    assert json.loads(base64.b64decode(entry["config"])) == conf and entry["result"] == result
    assert ["IP", "10.244.1.5"] in entry["cniArgs"] and entry["capabilityArgs"]["portMappings"][0]["hostPort"] == 8080
    calls.clear()
    count, problems = cni.delete_cached({"worker-1": tmp_path / "nodes" / "worker-1"}, lambda node: f"k-{node}")
    assert (count, problems) == (1, [])
    assert [(c[0], c[1]) for c in calls] == [("DEL", "portmap"), ("DEL", "bridge"), ("DEL", "loopback")]
    assert calls[0][2] == a.args() and calls[0][3] == a.port_mappings and calls[0][4] == result
    assert calls[0][5] == "k-worker-1" and calls[0][6] == ""  # the pod's namespace is gone: CNI_NETNS empty
    assert list(results.iterdir()) == []


def test_a_cache_entry_cannot_name_a_program_outside_the_plugin_folder(tmp_path) -> None:
    """The plugin's type names a file in CNI_PATH; a cache entry saying otherwise is refused,
    as is one whose config is not a network configuration list."""
    results = tmp_path / "nodes" / "w" / cni.RESULTS
    results.mkdir(parents=True)
    bad = {"cniVersion": "1.0.0", "name": "cbr0", "plugins": [{"type": "../../../bin/sh"}]}
    for name, conf in (("a", bad), ("b", {"plugins": "x"})):
        (results / name).write_text(json.dumps({"kind": "cniCacheV1", "containerId": "u", "ifName": "eth0",
                                                "config": base64.b64encode(json.dumps(conf).encode()).decode()}))
    count, problems = cni.delete_cached({"w": tmp_path / "nodes" / "w"}, lambda node: "no-such-netns")
    assert count == 1 and any("is not a plugin's name" in p for p in problems)
    assert any("not a network configuration list" in p for p in problems)
