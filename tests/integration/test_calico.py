"""The Calico-style data plane (``cni: calico``, issue #14) as a student inspects it: /26 blocks
with a blackhole on their node and ``proto bird`` routes on the others, BIRD's sessions
(``birdc`` on the node), pods on ``cali…`` veths with 169.254.1.1 answered by proxy ARP,
pod-to-pod traffic routed without NAT, Services by kube-proxy, DEL undoing a pod's veth and
route; then, on a cluster with a route reflector and a two-block pool: one session per worker,
a borrowed address routed as a /32, and a stopped BIRD's routes withdrawn and back once the
supervisor restarts it. Every wait is on the nodes' kernels or the generation each node
confirmed, not on the API."""
from __future__ import annotations

import ipaddress
import json
import re

from emulator.calico.cniplugin import veth_name
from emulator.netpolicy import felix
from tests.cluster import Cluster, k8semu, kubectl, module_cluster, poll

calico = module_cluster("topologies/calico.yaml")
NODES = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}


def pod_ip(cluster: Cluster, name: str) -> str:
    return cluster.pod(name)["status"]["podIP"]


def routes(cluster: Cluster, node: str) -> str:
    return cluster.exec(node, "ip", "route", check=True).stdout


def blocks(cluster: Cluster) -> dict[str, str]:
    """block -> node, from ``k8semu ipam show --show-blocks``."""
    out = k8semu("--cluster", cluster.name, "ipam", "show", "--show-blocks").stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^Block\s+(\S+)\s+host:(\S+)", out, re.M)}


def test_each_nodes_blocks_are_a_blackhole_there_and_bird_routes_elsewhere(calico: Cluster) -> None:
    calico.wait_running("default", count=4)
    calico.synced(timeout=20)
    owned = blocks(calico)
    assert owned and all(re.fullmatch(r"10\.244\.\d+\.\d+/26", b) for b in owned)
    for node in NODES:
        table = routes(calico, node)
        for block, owner in owned.items():
            if owner == node:
                assert f"blackhole {block} proto bird" in table, table
            else:
                assert f"{block} via {NODES[owner]} dev eth0 proto bird" in table, table
    protocols = calico.exec("worker-1", "birdc", "show", "protocols", check=True).stdout
    assert re.search(r"^Mesh_172_18_0_2\s+BGP\s+---\s+up\s+\S+\s+Established", protocols, re.M), protocols
    assert re.search(r"^Mesh_172_18_0_4\s+BGP\s+---\s+up\s+\S+\s+Established", protocols, re.M), protocols
    conf = calico.exec("worker-1", "cat", "/etc/bird/bird.conf", check=True).stdout
    assert "router id 172.18.0.3;" in conf and "protocol bgp Mesh_172_18_0_2 from bgp_template" in conf


def test_a_pod_sits_on_a_cali_veth_behind_169_254_1_1(calico: Cluster) -> None:
    calico.wait_running("default", count=4)
    ip, node = pod_ip(calico, "client"), calico.pod("client")["spec"]["nodeName"]
    host = veth_name("default", "client")
    assert calico.exec("client", "ip", "-4", "addr", "show", "eth0", check=True).stdout.count(f"inet {ip}/32") == 1
    assert [line.strip() for line in calico.exec("client", "ip", "route", check=True).stdout.splitlines()] == [
        "default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link"]
    assert f"{ip} dev {host} scope link" in routes(calico, node)
    link = calico.exec(node, "ip", "link", "show", host, check=True).stdout
    assert "link/ether ee:ee:ee:ee:ee:ee" in link
    assert calico.exec(node, "cat", f"/proc/sys/net/ipv4/conf/{host}/proxy_arp", check=True).stdout.strip() == "1"
    assert calico.exec(node, "ip", "-4", "addr", "show", host, check=True).stdout.count("inet ") == 0
    web = next(p for p in calico.get("pods", "default", "app=web") if p["spec"]["nodeName"] != node)
    assert calico.curl("client", f"http://{web['status']['podIP']}/").returncode == 0
    neigh = calico.exec("client", "ip", "neigh", "show", "169.254.1.1", check=True).stdout
    assert "lladdr ee:ee:ee:ee:ee:ee" in neigh  # proxy ARP answered for the gateway


def test_pod_to_pod_is_routed_without_nat_and_services_by_kube_proxy(calico: Cluster) -> None:
    calico.apply("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
                 "  ports: [{name: http, port: 80}]\n")
    calico.synced(timeout=20)
    client = pod_ip(calico, "client")
    web = next(p for p in calico.get("pods", "default", "app=web")
               if p["spec"]["nodeName"] != calico.pod("client")["spec"]["nodeName"])
    target, node = web["status"]["podIP"], web["spec"]["nodeName"]
    calico.exec(node, "conntrack", "-F")
    assert calico.curl("client", f"http://{target}/").returncode == 0
    entries = calico.exec(node, "conntrack", "-L", "-p", "tcp", "--dport", "80", check=True).stdout
    assert f"src={client} dst={target}" in entries and f"src={target} dst={client}" in entries, entries
    nat = calico.exec("worker-1", "iptables-save", "-t", "nat", check=True).stdout
    assert re.search(r"^-A KUBE-SVC-\S+ .*default/web:http -> ", nat, re.M)
    assert "-A cali-nat-outgoing" in nat and "cali40masq-ipam-pools src" in nat
    for _ in range(3):
        assert calico.curl("client", "http://web/").returncode == 0


def test_deleting_a_pod_removes_its_veth_and_route(calico: Cluster) -> None:
    calico.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: brief}\nspec:\n  nodeName: worker-2\n"
                 "  containers: [{name: c, image: busybox}]\n")
    poll(lambda: calico.pod("brief")["status"].get("phase") == "Running", timeout=20, what="brief running")
    ip, host = pod_ip(calico, "brief"), veth_name("default", "brief")
    assert f"{ip} dev {host} scope link" in routes(calico, "worker-2")
    k8semu("--cluster", calico.name, "delete", "pod", "brief", "--grace-period=0")
    poll(lambda: host not in routes(calico, "worker-2")
         and calico.exec("worker-2", "ip", "link", "show", host).returncode != 0, timeout=20,
         what="the CNI DEL to remove the cali veth")


def test_kubectl_lists_calicos_pools_blocks_affinities_and_bgp_settings(calico: Cluster) -> None:
    """Calico's CRDs as kubectl reads them on a Calico cluster: the pool of the spec, each block
    of the IPAM with its node and its pods' addresses at their ordinals, each node's affinity, a
    handle per pod, BGP's default configuration (the mesh on: no BGPPeer), and the CRDs
    themselves; read-only, saying why."""
    calico.wait_running("default", count=4)
    context = ("--context", f"k8semu-{calico.name}")

    def get(kind: str) -> list[dict]:
        return json.loads(kubectl(*context, "get", f"{kind}.crd.projectcalico.org", "-o", "json").stdout)["items"]

    pools = get("ippools")
    assert [(p["metadata"]["name"], p["spec"]["cidr"], p["spec"]["blockSize"], p["spec"]["vxlanMode"],
             p["spec"]["ipipMode"], p["spec"]["natOutgoing"]) for p in pools] == [
        ("default-ipv4-ippool", "10.244.0.0/16", 26, "Never", "Never", True)]
    owned = blocks(calico)
    shown = get("ipamblocks")
    assert {b["spec"]["cidr"]: b["spec"]["affinity"] for b in shown} == {c: f"host:{n}" for c, n in owned.items()}
    assert all(b["metadata"]["name"] == b["spec"]["cidr"].replace(".", "-").replace("/", "-") for b in shown)
    pods = [p for p in calico.get("pods") if p["status"].get("podIP") and not p["spec"].get("hostNetwork")]
    for pod in pods:
        ip = ipaddress.IPv4Address(pod["status"]["podIP"])
        block = next(b for b in shown if ip in ipaddress.IPv4Network(b["spec"]["cidr"]))
        ordinal = int(ip) - int(ipaddress.IPv4Network(block["spec"]["cidr"]).network_address)
        attr = block["spec"]["attributes"][block["spec"]["allocations"][ordinal]]
        assert attr["handle_id"] == f"k8s-pod-network.{pod['metadata']['uid']}"
        assert attr["secondary"]["pod"] == pod["metadata"]["name"] and attr["secondary"]["node"] == pod["spec"]["nodeName"]
        assert ordinal not in block["spec"]["unallocated"]
    affinities = {a["metadata"]["name"]: (a["spec"]["node"], a["spec"]["state"]) for a in get("blockaffinities")}
    assert affinities == {f"{n}-{c.replace('.', '-').replace('/', '-')}": (n, "confirmed") for c, n in owned.items()}
    [bgp] = get("bgpconfigurations")
    assert bgp["metadata"]["name"] == "default" and bgp["spec"]["asNumber"] == 64512
    assert bgp["spec"]["nodeToNodeMeshEnabled"] is True and get("bgppeers") == []
    table = kubectl(*context, "get", "ippools").stdout.split("\n")
    assert table[0].split() == ["NAME", "CREATED", "AT"] and table[1].startswith("default-ipv4-ippool ")
    block = get("ipamblocks")[0]["metadata"]["name"]
    refused = kubectl(*context, "delete", "ipamblock", block, check=False)
    assert refused.returncode == 1 and "MethodNotAllowed" in refused.stderr and "are its IPAM's" in refused.stderr
    assert "DESCRIPTION" in kubectl(*context, "explain", "ipamblocks.spec.allocations").stdout
    crds = kubectl(*context, "get", "crd", "-o", "name").stdout.split()
    assert crds == [f"customresourcedefinition.apiextensions.k8s.io/{p}.crd.projectcalico.org" for p in
                    ("bgpconfigurations", "bgppeers", "blockaffinities", "clusterinformations", "felixconfigurations",
                     "ipamblocks", "ipamconfigs", "ipamhandles", "ippools")]
    info = json.loads(kubectl(*context, "get", "clusterinformation", "default", "-o", "json").stdout)["spec"]
    assert info["clusterType"] == "k8s,bgp,kubeadm,kdd" and info["datastoreReady"] is True, info
    handles = {h["spec"]["handleID"] for h in get("ipamhandles")}
    assert handles == {f"k8s-pod-network.{p['metadata']['uid']}" for p in pods}


DENY_WEB = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web-deny}\n"
            "spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}\n")


def test_network_policy_is_enforced_in_felixs_chains(calico: Cluster) -> None:
    """A policy selecting the web pods: their cali-tw chain calls the policy's cali-pi chain,
    whose drop the client meets; the client's own chains go through its namespace's profile;
    the policy deleted, its chain goes and the client gets through again."""
    calico.wait_running("default", count=4)
    web = next(p for p in calico.get("pods", "default", "app=web")
               if p["spec"]["nodeName"] != calico.pod("client")["spec"]["nodeName"])
    node, target = web["spec"]["nodeName"], web["status"]["podIP"]
    tw = f"cali-tw-{veth_name('default', web['metadata']['name'])}"
    chain = felix.policy_chain("default/web-deny", "Ingress")
    calico.apply(DENY_WEB)
    try:
        calico.synced(timeout=20)
        rules = calico.exec(node, "iptables-save", "-t", "filter", check=True).stdout
        assert re.search(r"^-A FORWARD -m comment --comment \"?cali:wUHhoiAYhphO9Mso\"? -j cali-FORWARD$", rules, re.M)
        assert f"-A {tw} -m comment --comment \"Start of policies\" -j {chain}" in rules, rules
        assert f"-A {tw} -m comment --comment \"Drop if no policies passed packet\" -j DROP" in rules
        client = calico.exec(calico.pod("client")["spec"]["nodeName"], "iptables-save", "-t", "filter").stdout
        assert f"-A cali-fw-{veth_name('default', 'client')} -j cali-pro-kns.default" in client
        assert calico.curl("client", f"http://{target}/", timeout=2).returncode != 0
    finally:
        k8semu("--cluster", calico.name, "delete", "networkpolicy", "web-deny")
    calico.synced(timeout=20)
    assert f":{chain} " not in calico.exec(node, "iptables-save", "-t", "filter", check=True).stdout
    assert calico.curl("client", f"http://{target}/").returncode == 0
