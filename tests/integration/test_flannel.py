"""The Flannel data plane (``cni: flannel``, issue #13) as a student inspects it: flannel.1 and
its forwarding entries, routes and files on a node; pods made by the reference CNI plugins (cni0,
hairpin veths, host-local's leases, the result in ``describe``) and unmade by DEL; VXLAN on UDP
8472 between node addresses with pod addresses inside; hostPorts by the portmap plugin; and
kube-proxy's chains converging on every node (waiting on the generation each node's kube-proxy
loaded, not on the API). The Services, DNS and Ingress labs run on this data plane too
(test_services, test_dns, test_ingress)."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from emulator.errors import NotFoundError
from tests.cluster import ROOT, Cluster, k8semu, kubectl, module_cluster, poll

flannel = module_cluster("topologies/flannel.yaml")
NODES = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}
GOLDEN = ROOT / "tests" / "golden" / "flannel"


def pod_ip(cluster: Cluster, name: str) -> str:
    return cluster.pod(name)["status"]["podIP"]


def leases(cluster: Cluster, node: str) -> list[str]:
    return sorted(cluster.exec(node, "ls", "/var/lib/cni/networks/cbr0", check=True).stdout.split())


def test_a_node_holds_flannel_1_its_peers_and_its_files(flannel: Cluster) -> None:
    machine = {path: os.path.exists(path) for path in ("/etc/cni", "/run/flannel", "/var/lib/cni")}
    link = flannel.exec("worker-1", "ip", "-d", "link", "show", "flannel.1", check=True).stdout
    assert "mtu 1450" in link and "vxlan id 1 local 172.18.0.3 dev eth0" in link
    assert "dstport 8472 nolearning" in link
    fdb = flannel.exec("worker-1", "bridge", "fdb", "show", "dev", "flannel.1", check=True).stdout
    assert "dst 172.18.0.2 self permanent" in fdb and "dst 172.18.0.4 self permanent" in fdb
    neigh = flannel.exec("worker-1", "ip", "neigh", "show", "dev", "flannel.1", check=True).stdout
    assert re.search(r"^10\.244\.2\.0 lladdr \S+ PERMANENT", neigh, re.M)
    routes = flannel.exec("worker-1", "ip", "route", check=True).stdout
    assert "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink" in routes
    assert "10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1" in routes
    env = flannel.exec("worker-1", "cat", "/run/flannel/subnet.env", check=True).stdout
    assert env == (GOLDEN / "subnet.env").read_text()
    conf = json.loads(flannel.exec("worker-1", "cat", "/etc/cni/net.d/10-flannel.conflist", check=True).stdout)
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap"]
    assert conf["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]]
    assert {path: os.path.exists(path) for path in machine} == machine  # the node's files are in its mount view only


def test_pods_are_made_by_the_reference_plugins(flannel: Cluster) -> None:
    flannel.wait_running("default", count=4)
    ip = pod_ip(flannel, "client")
    node = flannel.pod("client")["spec"]["nodeName"]
    eth0 = flannel.exec("client", "ip", "-d", "link", "show", "eth0", check=True).stdout
    assert "mtu 1450" in eth0 and "veth" in eth0
    assert flannel.exec("client", "ip", "route", "show", "default", check=True).stdout.startswith(
        f"default via {ip.rsplit('.', 1)[0]}.1 dev eth0")
    ports = flannel.exec(node, "bridge", "-d", "link", "show", check=True).stdout
    assert "master cni0" in ports and "hairpin on" in ports
    assert ip in leases(flannel, node)
    uid = flannel.pod("client")["metadata"]["uid"]
    assert flannel.exec(node, "cat", f"/var/lib/cni/networks/cbr0/{ip}", check=True).stdout.split() == [uid, "eth0"]
    described = k8semu("--cluster", flannel.name, "describe", "pod", "client").stdout
    assert "CNI Result (cniVersion 1.0.0):" in described and f"{ip}/24  gateway" in described


def test_deleting_a_pod_runs_the_plugins_del(flannel: Cluster) -> None:
    flannel.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: brief}\nspec:\n  nodeName: worker-1\n"
                  "  containers: [{name: c, image: busybox}]\n")
    poll(lambda: flannel.pod("brief")["status"].get("phase") == "Running", timeout=20, what="brief running")
    ip = pod_ip(flannel, "brief")
    assert ip in leases(flannel, "worker-1")
    k8semu("--cluster", flannel.name, "delete", "pod", "brief", "--grace-period=0")
    poll(lambda: ip not in leases(flannel, "worker-1"), timeout=20, what="host-local to free the address")


def test_cross_node_traffic_is_vxlan_on_8472_without_nat(flannel: Cluster) -> None:
    web = next(p for p in flannel.get("pods", "default", "app=web") if p["spec"]["nodeName"] == "worker-1")
    target, client = web["status"]["podIP"], pod_ip(flannel, "client")
    capture = subprocess.Popen(["ip", "netns", "exec", flannel.netns("worker-1"), "tcpdump", "-l", "-nn", "-c", "1",
                                "-T", "vxlan", "-i", "eth0", "udp port 8472"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        poll(lambda: flannel.curl("client", f"http://{target}/").returncode == 0 and capture.poll() is not None,
             timeout=15, what="a VXLAN packet on worker-1's eth0")
        out = capture.stdout.read()
    finally:
        capture.kill()
    # (tcpdump names UDP 8472 OTV unless told it is VXLAN, as on a real Flannel node)
    assert ".8472: VXLAN, flags [I] (0x08), vni 1" in out, out
    assert f"IP {client}." in out or f"> {client}." in out, out


def test_host_port_by_the_portmap_plugin(flannel: Cluster) -> None:
    flannel.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: hostport}\nspec:\n  nodeName: worker-2\n"
                  "  containers: [{name: nginx, image: nginx:1.25, ports: [{containerPort: 80, hostPort: 8081}]}]\n")
    poll(lambda: flannel.exec("worker-1", "curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://{NODES['worker-2']}:8081/").stdout == "200", timeout=20,
         what="hostPort 8081 on worker-2")
    nat = flannel.exec("worker-2", "iptables-save", "-t", "nat", check=True).stdout
    assert "CNI-HOSTPORT-DNAT" in nat and "--dport 8081" in nat


def test_kube_proxy_rules_converge_on_every_node(flannel: Cluster) -> None:
    """A Service's KUBE-SEP chains follow its endpoints on every node once every node's
    kube-proxy has loaded the latest view."""
    flannel.apply("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
                  "  ports: [{name: http, port: 80}]\n")

    def seps(node: str) -> int:
        nat = flannel.exec(node, "iptables-save", "-t", "nat", check=True).stdout
        return len(re.findall(r"^-A KUBE-SVC-\S+ .*default/web:http -> .* -j KUBE-SEP-", nat, re.M))
    flannel.synced(timeout=15)
    assert {n: seps(n) for n in NODES} == {n: 3 for n in NODES}
    k8semu("--cluster", flannel.name, "scale", "deployment", "web", "--replicas=2")
    poll(lambda: len([p for p in flannel.get("pods", "default", "app=web")
                      if not p["metadata"].get("deletionTimestamp")]) == 2, timeout=20, what="two web pods")
    poll(lambda: {n: seps(n) for n in NODES} == {n: 2 for n in NODES}, timeout=15,
         what="every node's KUBE-SVC chain to lose the endpoint")
    for _ in range(3):
        assert flannel.curl("client", "http://web/").returncode == 0


def test_kube_proxys_health_and_metrics_ports(flannel: Cluster) -> None:
    """kube-proxy's servers in each node: /healthz on every address, port 10256 (another node
    asks it, as a load balancer would), /proxyMode and /metrics on the node's loopback, 10249."""
    flannel.synced(timeout=15)
    health = flannel.exec("worker-1", "curl", "-s", "-i", f"http://{NODES['worker-2']}:10256/healthz", check=True).stdout
    assert health.startswith("HTTP/1.1 200 OK") and "Content-Type: application/json" in health
    body = json.loads(health.split("\n\n", 1)[1])  # (text mode: the CRLFs read as newlines)
    assert body["nodeEligible"] is True and " +0000 UTC m=+" in body["currentTime"]
    assert flannel.exec("worker-2", "curl", "-s", "http://127.0.0.1:10249/proxyMode", check=True).stdout == "iptables"
    metrics = flannel.exec("worker-2", "curl", "-s", "http://127.0.0.1:10249/metrics", check=True).stdout
    count = re.search(r"^kubeproxy_sync_proxy_rules_duration_seconds_count (\S+)$", metrics, re.M)
    assert count and float(count.group(1)) >= 1
    assert 'kubeproxy_proxy_healthz_total{code="200"}' in metrics
    outside = flannel.exec("worker-1", "curl", "-s", "-m", "2", f"http://{NODES['worker-2']}:10249/metrics")
    assert outside.returncode != 0  # the metrics port is the node's loopback only


def test_flanneld_and_kube_proxy_run_as_their_manifests_service_accounts(flannel: Cluster) -> None:
    """kube-flannel.yml's ``flannel`` ServiceAccount (kube-flannel) and kubeadm's ``kube-proxy``
    (kube-system): their pods run as them and may do what their roles grant."""
    for namespace, label, account in (("kube-flannel", "app=flannel", "flannel"),
                                      ("kube-system", "k8s-app=kube-proxy", "kube-proxy")):
        pods = kubectl("get", "pods", "-n", namespace, "-l", label, "-o",
                       "jsonpath={.items[*].spec.serviceAccountName}").stdout.split()
        assert pods == [account] * 3, (label, pods)
    who = "--as=system:serviceaccount:kube-flannel:flannel"
    assert kubectl("auth", "can-i", "patch", "nodes", "--subresource=status", who).stdout == "yes\n"
    assert kubectl("auth", "can-i", "patch", "nodes", who, check=False).stdout == "no\n"
    proxy = "--as=system:serviceaccount:kube-system:kube-proxy"
    assert kubectl("auth", "can-i", "watch", "endpointslices.discovery.k8s.io", proxy).stdout == "yes\n"
    assert kubectl("get", "clusterrolebinding", "kubeadm:node-proxier", "-o",
                   "jsonpath={.roleRef.name} {.subjects[0].namespace}/{.subjects[0].name}").stdout == \
        "system:node-proxier kube-system/kube-proxy"


def test_the_controller_faults_say_there_is_no_controller(flannel: Cluster) -> None:
    for fault in (flannel.client.controller_stop, flannel.client.controller_start):
        with pytest.raises(NotFoundError, match="runs cni: flannel: it has no SDN controller"):
            fault()
