"""Flannel's data plane as files and commands (emulator/flannel): the conflist, subnet.env,
flannel.1 and its neighbours, and flanneld's chains for the course's three-node cluster
(topologies/flannel.yaml), as golden files; the spec's data-plane fields; the CNI plugins'
environment; kube-proxy's jumps as argv words."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from emulator.cluster.admit import admit_cluster
from emulator.flannel import config as flannel
from emulator.kubeproxy import iptables
from emulator.runtime.cni import Attachment
from emulator.runtime.proxier import _split

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
    a = Attachment("uid-1", "/run/netns/x", "flannel_worker-1", "default", "web-1", "uid-1", "10.244.1.7")
    assert a.args() == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;"
                        "K8S_POD_INFRA_CONTAINER_ID=uid-1;K8S_POD_UID=uid-1;IP=10.244.1.7")


def test_kube_proxy_jumps_split_into_argv_words() -> None:
    words = {rule: _split(rule) for _, _, rule in iptables.JUMPS}
    assert words['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'] == [
        "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"]
    assert words["-j KUBE-FIREWALL"] == ["-j", "KUBE-FIREWALL"]
    assert all('"' not in w for ws in words.values() for w in ws)
