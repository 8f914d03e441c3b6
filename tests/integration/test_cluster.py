"""The three-node topology up, as a user sees it: pods, addresses, pod-to-pod traffic on one node
and across nodes through the VXLAN overlay, exec, pod files, restarts and scaling."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from pathlib import Path


from emulator.model import naming
from tests.cluster import Cluster, k8semu, poll

NS = "demo"


def pod_ip(cluster: Cluster, name: str) -> str:
    return cluster.pod(name, NS)["status"]["podIP"]


def test_nodes_ready_and_pods_addressed_from_their_node_cidr(three_node: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in three_node.get("nodes")}
    assert sorted(nodes) == ["node-a", "node-b", "node-c"]
    assert all(n["status"]["conditions"][0]["status"] == "True" for n in nodes.values())
    pods = three_node.wait_running(NS, count=5)
    for pod in pods:
        cidr = nodes[pod["spec"]["nodeName"]]["spec"]["podCIDR"]
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cidr)
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == len(ips)
    link = three_node.exec("client-b", "ip", "-o", "link", "show", "eth0", namespace=NS).stdout
    assert "mtu 1450" in link
    route = three_node.exec("client-b", "ip", "route", "show", "default", namespace=NS).stdout
    assert route.startswith("default via 10.244.1.1 dev eth0")


def ports(bridge: str) -> list[str]:
    return subprocess.run(["ovs-vsctl", "list-ports", bridge], capture_output=True, text=True).stdout.split()


def test_a_pods_eth0_is_a_veth_whose_peer_is_its_switch_port_and_goes_with_the_pod(three_node: Cluster) -> None:
    """podInterface veth (the default): eth0 is a veth with the pod's MAC and no IPv6; its
    peer (``eth0@ifN``) is the node's OVS port in the root namespace, tagged with the run's tag
    and without IPv6; deleting the pod removes both the port and the device."""
    scope = naming.Scope(three_node.name, three_node.client.status()["slot"])
    three_node.apply(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: paired, namespace: {NS}}}\n"
                     "spec: {nodeName: node-b, containers: [{name: c, image: busybox}]}\n")
    poll(lambda: three_node.pod("paired", NS)["status"].get("phase") == "Running", timeout=15, what="paired running")
    port, bridge = naming.pod_port(scope, NS, "paired"), naming.node_bridge(scope, 1)
    link = three_node.exec("paired", "ip", "-d", "link", "show", "eth0", namespace=NS).stdout
    assert "veth" in link.split("\n")[2] and naming.mac_from_ip(pod_ip(three_node, "paired")) in link
    peer_index = three_node.exec("paired", "cat", "/sys/class/net/eth0/iflink", namespace=NS).stdout.strip()
    assert Path("/sys/class/net", port, "ifindex").read_text().strip() == peer_index
    assert Path("/sys/class/net", port, "ifalias").read_text().startswith("k8semu:")
    assert Path("/proc/sys/net/ipv6/conf", port, "disable_ipv6").read_text().strip() == "1"
    assert three_node.exec("paired", "ip", "-6", "addr", namespace=NS).stdout.strip() == ""
    assert port in ports(bridge)
    k8semu("--cluster", three_node.name, "delete", "pod", "paired", "-n", NS)
    poll(lambda: port not in ports(bridge) and not Path("/sys/class/net", port).exists(), timeout=15,
         what="the port removed from the switch and the machine")


INTERNAL_PORT = """apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {name: internal-port}
spec:
  nodes: [{name: a}]
  network: {podInterface: internal-port}
  dns: {enabled: false}
  manifests:
    - {apiVersion: v1, kind: Pod, metadata: {name: tapped}, spec: {containers: [{name: c, image: busybox}]}}
"""


def test_with_internal_ports_eth0_is_the_switch_port_moved_in_and_nothing_stays_in_the_root_namespace(
        tmp_path: Path) -> None:
    """podInterface internal-port: eth0 is the node's OVS internal port (a tap), tagged with the
    run's tag, with the pod's MAC and no IPv6; the root namespace has no device of the port's
    name, and deleting the pod removes the port from the switch."""
    spec = tmp_path / "internal-port.yaml"
    spec.write_text(INTERNAL_PORT)
    cluster = Cluster(str(spec)).up()
    try:
        scope = naming.Scope(cluster.name, cluster.client.status()["slot"])
        port, bridge = naming.pod_port(scope, "default", "tapped"), naming.node_bridge(scope, 0)
        link = cluster.exec("tapped", "ip", "-d", "link", "show", "eth0").stdout
        ip = cluster.pod("tapped")["status"]["podIP"]
        assert "tun type tap" in link and naming.mac_from_ip(ip) in link
        assert "k8semu:" in link  # the alias: the run's tag
        assert cluster.exec("tapped", "ip", "-6", "addr").stdout.strip() == ""
        assert not Path("/sys/class/net", port).exists()
        assert port in ports(bridge)
        k8semu("--cluster", cluster.name, "delete", "pod", "tapped")
        poll(lambda: port not in ports(bridge), timeout=15, what="the port removed from the switch")
        assert not Path("/sys/class/net", port).exists()
    finally:
        cluster.down()


def test_same_node_pod_to_pod_ping_and_tcp(three_node: Cluster) -> None:
    web = pod_ip(three_node, "web-b")
    assert three_node.exec("client-b", "ping", "-c", "2", "-W", "2", web, namespace=NS).returncode == 0
    page = three_node.curl("client-b", f"http://{web}/", namespace=NS)
    assert page.returncode == 0 and "<p>pod: web-b</p>" in page.stdout


def test_cross_node_tcp_without_nat(three_node: Cluster) -> None:
    web, client = pod_ip(three_node, "web-b"), pod_ip(three_node, "client-c")
    assert three_node.exec("client-c", "ping", "-c", "2", "-W", "2", web, namespace=NS).returncode == 0
    marker = f"/cross-node-{time.time_ns()}"
    page = three_node.curl("client-c", f"http://{web}{marker}", namespace=NS)
    assert page.returncode == 0  # a 404 page from nginx is still a TCP round trip
    access = f'"GET {marker} HTTP/1.1"'
    log = poll(lambda: (lambda t: access in t and t)(k8semu("logs", "web-b", "-n", NS).stdout),
               what="the request in nginx's access log")
    line = next(line for line in log.splitlines() if access in line and "[error]" not in line)
    assert line.startswith(client + " "), f"nginx saw {line.split()[0]}, expected the client pod {client}"


def test_echo_sees_the_client_pod_ip_across_nodes(three_node: Cluster) -> None:
    echo = three_node.get("pods", NS, selector="app=echo")[0]
    reply = three_node.curl("client-c", f"http://{echo['status']['podIP']}:8080/", namespace=NS)
    assert reply.stdout.strip() == f"hello from {echo['metadata']['name']}"
    body = json.loads(three_node.curl("client-b", f"http://{pod_ip(three_node, 'client-c')}:8080/",
                                      namespace=NS).stdout)
    assert body["client"] == pod_ip(three_node, "client-b") and body["pod"] == "client-c"


def test_node_reaches_pods_on_every_node(three_node: Cluster) -> None:
    for pod in ("web-b", "client-c"):
        port = "8080" if pod == "client-c" else "80"
        assert three_node.curl("node-a", f"http://{pod_ip(three_node, pod)}:{port}/").returncode == 0


def test_underlay_carries_vxlan_with_node_ips_outside_and_pod_ips_inside(three_node: Cluster) -> None:
    web, client = pod_ip(three_node, "web-b"), pod_ip(three_node, "client-c")
    capture = subprocess.Popen(["ip", "netns", "exec", three_node.netns("node-c"), "tcpdump", "-l", "-nn", "-c", "1", "-i", "eth0",
                                "udp port 4789 and src host 172.18.0.4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Retry the request until tcpdump (which may still be opening its socket) has seen a packet.
        poll(lambda: three_node.curl("client-c", f"http://{web}/", namespace=NS).returncode == 0 and
             capture.poll() is not None, timeout=15, what="a VXLAN packet on node-c's eth0")
        out = capture.stdout.read()
    finally:
        capture.kill()
    assert "172.18.0.4." in out and "172.18.0.3.4789: VXLAN" in out, out
    assert f"IP {client}." in out and f"> {web}.80:" in out, out


def test_exec_passes_exit_status_and_output_through(three_node: Cluster) -> None:
    done = three_node.exec("client-b", "sh", "-c", "echo out; echo err >&2; exit 3", namespace=NS)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    assert three_node.exec("node-b", "ip", "-4", "-o", "addr", "show", "eth0").stdout.split()[3] == "172.18.0.3/24"
    assert three_node.exec("nope", "true", namespace=NS).returncode != 0


def test_pod_has_its_own_hostname_hosts_and_resolv_conf(three_node: Cluster) -> None:
    assert three_node.exec("client-b", "hostname", namespace=NS).stdout.strip() == "client-b"
    hosts = three_node.exec("client-b", "cat", "/etc/hosts", namespace=NS).stdout
    assert hosts.startswith("# Kubernetes-managed hosts file.") and f"{pod_ip(three_node, 'client-b')}\tclient-b" in hosts
    resolv = three_node.exec("client-b", "cat", "/etc/resolv.conf", namespace=NS).stdout
    assert "search demo.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "nameserver 10.96.0.10" in resolv and "options ndots:5" in resolv


def test_containers_of_a_pod_share_localhost(three_node: Cluster) -> None:
    reply = three_node.exec("client-c", "curl", "-sS", "-m", "3", "http://127.0.0.1:8080/", namespace=NS)
    assert reply.returncode == 0 and json.loads(reply.stdout)["pod"] == "client-c"


def test_killed_container_restarts_and_is_counted(three_node: Cluster) -> None:
    before = three_node.pod("web-b", NS)["status"]["containerStatuses"][0]
    pid = int(before["containerID"].split("//")[1])
    subprocess.run(["kill", "-9", str(pid)], check=True)

    def restarted():
        cs = three_node.pod("web-b", NS)["status"]["containerStatuses"][0]
        return cs if cs["restartCount"] == before["restartCount"] + 1 and cs["ready"] else None
    cs = poll(restarted, timeout=15, what="web-b's nginx to restart")
    assert cs["containerID"] != before["containerID"]
    poll(lambda: three_node.curl("client-b", f"http://{pod_ip(three_node, 'web-b')}/", namespace=NS).returncode == 0,
         what="nginx to serve again")


def test_scale_up_and_down_leaves_exactly_the_right_pods(three_node: Cluster) -> None:
    def echo_pods():
        return [p for p in three_node.get("pods", NS, selector="app=echo") if not p["metadata"].get("deletionTimestamp")]
    for replicas in (5, 1):
        k8semu("scale", "deployment/echo", "-n", NS, "--replicas", str(replicas))
        pods = poll(lambda: (lambda ps: ps if len(ps) == replicas and all(
            p["status"]["phase"] == "Running" for p in ps) and len(three_node.get("pods", NS)) == replicas + 3
            else None)(echo_pods()), timeout=30, what=f"{replicas} echo pods")
        ips = [p["status"]["podIP"] for p in three_node.get("pods", NS)]
        assert len(set(ips)) == len(ips)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        names = {line.split()[0] for line in netns.splitlines()}
        prefix = f"{three_node.name}_{NS}_echo-"
        echo_netns = {n for n in names if n.startswith(prefix)}
        assert echo_netns == {f"{three_node.name}_{NS}_{p['metadata']['name']}" for p in pods}
        for p in pods:
            reply = three_node.curl("client-b", f"http://{p['status']['podIP']}:8080/", namespace=NS)
            assert reply.stdout.strip() == f"hello from {p['metadata']['name']}"


def test_flows_are_labelled_by_owner(three_node: Cluster) -> None:
    dump = k8semu("flows", "node-b").stdout
    assert "table=Classifier" in dump and "# pod demo/web-b" in dump and "# overlay to node-c" in dump
    assert "NORMAL" not in dump


def test_a_name_runs_once_and_two_clusters_run_side_by_side_unseen(three_node: Cluster) -> None:
    again = k8semu("up", "topologies/three-node.yaml", "--detach", check=False)
    assert again.returncode == 1 and "'three-node' is already running" in again.stderr
    other = Cluster("topologies/default.yaml").up()
    try:
        assert k8semu("status", check=False).stderr.startswith("error: several clusters are running")
        assert three_node.client.status()["slot"] != other.client.status()["slot"]
        mine, theirs = set(three_node.client.status()["bridges"].values()), set(other.client.status()["bridges"].values())
        assert not mine & theirs
        # Both use 10.244.0.0/16: each client reaches its own cluster's pod at an address the other
        # cluster also uses, and never the other's.
        web = other.get("pods", "default", "app=web")[0]
        answer = other.curl("client", f"http://{web['status']['podIP']}/")
        assert f"pod: {web['metadata']['name']}" in answer.stdout
        mine_at_that_ip = [p for p in three_node.get("pods") if p["status"].get("podIP") == web["status"]["podIP"]]
        reply = three_node.curl("client-b", f"http://{web['status']['podIP']}/", namespace=NS, timeout=2)
        assert web["metadata"]["name"] not in reply.stdout
        assert bool(mine_at_that_ip) == (reply.returncode == 0) or reply.returncode != 0
    finally:
        other.down()
    assert three_node.curl("client-b", f"http://{pod_ip(three_node, 'web-b')}/", namespace=NS).returncode == 0


def test_load_balancer_without_a_pool_stays_pending(three_node: Cluster) -> None:
    three_node.apply("apiVersion: v1\nkind: Service\nmetadata: {name: lb, namespace: demo}\nspec:\n"
                     "  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 80}]\n")
    row = next(line for line in k8semu("get", "svc", "-n", NS).stdout.splitlines() if line.startswith("lb "))
    assert row.split()[1:4] == ["LoadBalancer", row.split()[2], "<pending>"]
    assert "80:3" in row.split()[4]
