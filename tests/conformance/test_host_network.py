"""hostNetwork pods, after kubernetes/kubernetes test/e2e/network/networking.go ("Networking
Granular Checks: Services" with hostNetwork endpoints and clients) and
test/e2e/common/node/kubelet_etc_hosts.go; each test is named after the e2e test it follows.

A hostNetwork pod's processes run in its node's network namespace: its IP is the node's, its
ports are the node's, it has no switch port; as a Service endpoint it is its node's address."""
from __future__ import annotations

import json
import os
import subprocess

from tests.cluster import SERVICES_PLANES, Cluster, k8semu, module_cluster, poll

OTHER_PLANES = SERVICES_PLANES  # make slow (the budget)
hostnet_cluster = module_cluster("topologies/services.yaml", *OTHER_PLANES, slow=OTHER_PLANES)

NODES = {"worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}
OUTSIDE = "172.18.0.254"
NS = "hostnet"


def host_pod(name: str, node: str, port: int, labels: str = "app: hostnet-server", extra: str = "") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {NS}, labels: {{{labels}}}}}\n"
            f"spec:\n  hostNetwork: true\n  nodeName: {node}\n{extra}"
            "  containers:\n    - name: echo\n      image: k8semu/echo\n"
            f"      env: [{{name: PORT, value: '{port}'}}]\n"
            f"      ports: [{{containerPort: {port}}}]\n")


def echo(cluster: Cluster, source: str, url: str) -> dict:
    """The echo server's answer (its pod, podIP and the client address it saw), or {}."""
    done = cluster.curl(source, url, namespace=None)
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout.startswith("{") else {}


def from_netns(netns: str, url: str) -> dict:
    done = subprocess.run(["ip", "netns", "exec", netns, "curl", "-sS", "-m", "5", url],
                          capture_output=True, text=True, timeout=15)
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout.startswith("{") else {}


def service(cluster: Cluster, name: str) -> tuple[str, int]:
    spec = json.loads(k8semu("--cluster", cluster.name, "get", "svc", name, "-n", NS, "-o", "json").stdout)["spec"]
    return spec["clusterIP"], spec["ports"][0].get("nodePort", 0)


def setup_namespace(cluster: Cluster) -> None:
    cluster.apply(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n")


def test_should_function_for_service_endpoints_using_host_network(hostnet_cluster: Cluster) -> None:
    """networking.go "Granular Checks: Services should function for service endpoints using
    hostNetwork" and "should function for pod-Service(hostNetwork)": two hostNetwork servers,
    one per worker, behind a NodePort Service; each reports its node's address as pod IP; a pod
    reaches both through the cluster IP and through every node's NodePort; a node and a client
    outside reach them through the NodePort; a pod reaches a hostNetwork pod at its node's
    address directly and is seen with its own address."""
    setup_namespace(hostnet_cluster)
    hostnet_cluster.apply("---\n".join(
        [host_pod(f"server-{n}", n, 9376) for n in NODES] +
        [f"apiVersion: v1\nkind: Service\nmetadata: {{name: hostnet-server, namespace: {NS}}}\n"
         "spec: {type: NodePort, selector: {app: hostnet-server}, ports: [{port: 80, targetPort: 9376}]}\n"]))
    try:
        pods = hostnet_cluster.wait_running(NS, count=2)
        assert {p["metadata"]["name"]: p["status"]["podIP"] for p in pods} == \
            {f"server-{n}": ip for n, ip in NODES.items()}
        assert all(p["status"]["podIP"] == p["status"]["hostIP"] for p in pods)
        hostnet_cluster.synced()
        cluster_ip, node_port = service(hostnet_cluster, "hostnet-server")
        seen = set()
        poll(lambda: seen.add(echo(hostnet_cluster, "client", f"http://{cluster_ip}/").get("podIP"))
             or seen >= set(NODES.values()), timeout=20, what="both hostNetwork endpoints through the cluster IP")
        for node, ip in NODES.items():
            got = echo(hostnet_cluster, "client", f"http://{ip}:{node_port}/")
            assert got.get("podIP") in NODES.values(), (node, got)
            outside = from_netns(hostnet_cluster.netns("outside"), f"http://{ip}:{node_port}/")
            assert outside.get("podIP") in NODES.values(), (node, outside)
            from_node = from_netns(hostnet_cluster.netns(node), f"http://{cluster_ip}/")
            assert from_node.get("podIP") in NODES.values(), (node, from_node)
        client_ip = hostnet_cluster.pod("client")["status"]["podIP"]
        direct = echo(hostnet_cluster, "client", f"http://{NODES['worker-2']}:9376/")
        assert direct.get("pod") == "server-worker-2" and direct.get("client") == client_ip, direct
    finally:
        k8semu("--cluster", hostnet_cluster.name, "delete", "svc", "hostnet-server", "-n", NS, check=False)
        k8semu("--cluster", hostnet_cluster.name, "delete", "pod", "server-worker-1", "server-worker-2", "-n", NS,
               check=False)


def test_should_function_for_node_service_http(hostnet_cluster: Cluster) -> None:
    """networking.go "Granular Checks: Services should function for node-Service: http": a
    client on the host network (a hostNetwork pod) reaches a Service's cluster IP and a node's
    NodePort; with dnsPolicy ClusterFirstWithHostNet it resolves Service names through the
    cluster DNS."""
    setup_namespace(hostnet_cluster)
    hostnet_cluster.apply(host_pod("node-client", "worker-1", 9377, "app: node-client",
                                   "  dnsPolicy: ClusterFirstWithHostNet\n"))
    try:
        hostnet_cluster.wait_running(NS, count=1)
        web = json.loads(k8semu("--cluster", hostnet_cluster.name, "get", "svc", "web", "-o", "json").stdout)
        ip = web["spec"]["clusterIP"]

        def status(url: str) -> str:
            done = hostnet_cluster.exec("node-client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                                        url, namespace=NS)
            return done.stdout

        assert status(f"http://{ip}:8080/") == "200"
        assert status(f"http://{NODES['worker-2']}:30007/") == "200"  # web-nodeport
        assert status("http://web.default.svc.cluster.local:8080/") == "200"
    finally:
        k8semu("--cluster", hostnet_cluster.name, "delete", "pod", "node-client", "-n", NS, check=False)


def test_should_test_kubelet_managed_etc_hosts_file_and_the_node_namespace(hostnet_cluster: Cluster) -> None:
    """kubelet_etc_hosts.go "should test kubelet managed /etc/hosts file": a hostNetwork pod's
    /etc/hosts is its node's (header "(host network)"), not the pod-managed one, with
    hostAliases added; its hostname is the node's; dnsPolicy ClusterFirst on the host network
    falls back to the node's resolver as kubelet does. Beyond the e2e test: the pod's processes
    share the node's network namespace, and deleting the pod leaves that namespace and the node
    alone; a second pod wanting the same port on that node is not scheduled there."""
    setup_namespace(hostnet_cluster)
    aliases = "  hostAliases: [{ip: 10.9.9.9, hostnames: [foo.example]}]\n"
    hostnet_cluster.apply(host_pod("hosts", "worker-2", 9378, "app: hosts", aliases))
    try:
        hostnet_cluster.wait_running(NS, count=1)
        hosts = hostnet_cluster.exec("hosts", "cat", "/etc/hosts", namespace=NS, check=True).stdout
        assert hosts.startswith("# Kubernetes-managed hosts file (host network).\n")
        assert "# Kubernetes-managed hosts file.\n" not in hosts
        assert f"{NODES['worker-2']}\tworker-2\n" in hosts and "10.9.9.9\tfoo.example\n" in hosts
        assert hostnet_cluster.exec("hosts", "hostname", namespace=NS, check=True).stdout.strip() == "worker-2"
        assert "nameserver 10.96.0.10" not in hostnet_cluster.exec("hosts", "cat", "/etc/resolv.conf",
                                                                      namespace=NS, check=True).stdout
        pid = hostnet_cluster.client.pod("hosts", NS)["pids"]["echo"]
        node_netns = hostnet_cluster.netns("worker-2")
        node_ino = os.stat(f"/run/netns/{node_netns}").st_ino
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == node_ino
        hostnet_cluster.apply(host_pod("same-port", "", 9378, "app: same-port").replace("  nodeName: \n", "")
                              .replace("spec:\n", "spec:\n  nodeSelector: {kubernetes.io/hostname: worker-2}\n"))
        pending = poll(lambda: (lambda p: p if p["status"].get("conditions") else None)(
            hostnet_cluster.pod("same-port", NS)), timeout=10, what="same-port to be looked at by the scheduler")
        assert pending["status"]["phase"] == "Pending" and "didn't have free ports" in json.dumps(pending["status"])
        k8semu("--cluster", hostnet_cluster.name, "delete", "pod", "hosts", "same-port", "-n", NS)
        poll(lambda: not [p for p in hostnet_cluster.get("pods", NS)], timeout=30, what="the pods to go")
        assert os.stat(f"/run/netns/{node_netns}").st_ino == node_ino
        assert not os.path.exists(f"/proc/{pid}")
        web = subprocess.run(["ip", "netns", "exec", hostnet_cluster.netns("outside"), "curl", "-s", "-o", "/dev/null",
                              "-w", "%{http_code}", "-m", "5", f"http://{NODES['worker-2']}:30007/"],
                             capture_output=True, text=True, timeout=15)
        assert web.stdout == "200"  # the node still forwards its NodePort after the pod left its namespace
    finally:
        k8semu("--cluster", hostnet_cluster.name, "delete", "namespace", NS, "--wait=false", check=False)
