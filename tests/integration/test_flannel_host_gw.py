"""Flannel's host-gw backend (with kube-proxy's nftables mode): no flannel.1, routes to the other
nodes' pod ranges via their addresses, pods at the underlay's MTU, and pod-to-pod and Service
traffic across nodes unencapsulated and without NAT."""
from __future__ import annotations

import subprocess

from tests.cluster import Cluster, module_cluster, poll

host_gw = module_cluster("topologies/flannel-host-gw.yaml")


def test_routes_go_via_the_nodes_and_nothing_is_encapsulated(host_gw: Cluster) -> None:
    routes = host_gw.exec("worker-1", "ip", "route", check=True).stdout
    assert "10.244.0.0/24 via 172.18.0.2 dev eth0" in routes and "10.244.2.0/24 via 172.18.0.4 dev eth0" in routes
    assert host_gw.exec("worker-1", "ip", "link", "show", "flannel.1").returncode != 0
    assert '"mtu": 1500' in host_gw.exec("worker-1", "cat", "/etc/cni/net.d/10-flannel.conflist", check=True).stdout
    host_gw.wait_running("default", count=4)
    assert "mtu 1500" in host_gw.exec("client", "ip", "link", "show", "eth0", check=True).stdout


def test_pod_to_pod_and_service_across_nodes_on_the_wire_as_they_are(host_gw: Cluster) -> None:
    host_gw.wait_running("default", count=4)
    client = host_gw.pod("client")
    far = next(p for p in host_gw.get("pods", "default", "app=web") if p["spec"]["nodeName"] != client["spec"]["nodeName"])
    node = far["spec"]["nodeName"]
    capture = subprocess.Popen(["ip", "netns", "exec", host_gw.netns(node), "tcpdump", "-l", "-nn", "-c", "1", "-i", "eth0",
                                f"tcp and dst host {far['status']['podIP']} and src host {client['status']['podIP']}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        poll(lambda: host_gw.curl("client", f"http://{far['status']['podIP']}/").returncode == 0
             and capture.poll() is not None, timeout=15, what="the pod's own packet on the far node's eth0")
    finally:
        capture.kill()
    host_gw.apply("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
                  "  ports: [{port: 80}]\n")
    host_gw.synced(timeout=15)
    ip = next(s for s in host_gw.get("services", "default") if s["metadata"]["name"] == "web")["spec"]["clusterIP"]
    listed = host_gw.exec(node, "nft", "list", "map", "ip", "kube-proxy", "service-ips", check=True).stdout
    assert f"{ip} . tcp . 80 : goto service-" in listed, listed
    for _ in range(3):
        assert host_gw.curl("client", "http://web/").returncode == 0
