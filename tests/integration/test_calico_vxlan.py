"""Calico with VXLAN encapsulation (topologies/calico-vxlan.yaml): vxlan.calico on every node
with its tunnel address from the node's first block, the pool's routes programmed by "Felix"
(``proto 80``, via the other nodes' tunnel addresses, onlink) rather than BIRD, the other nodes'
VTEPs in the forwarding database, pod MTU 1450, and cross-node pod traffic in VXLAN on UDP 4789
between node addresses with the pod packet inside. Waits are on the nodes' kernels and the
generation each node confirmed."""
from __future__ import annotations

import subprocess

from tests.cluster import Cluster, module_cluster, poll

# make slow (make test's budget); Felix's VXLAN state is golden-tested in tests/unit/test_calico.py
vxlan = module_cluster("topologies/calico-vxlan.yaml", slow=("topologies/calico-vxlan.yaml",))
NODES = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}
TUNNELS = {"control-plane": "10.244.0.0", "worker-1": "10.244.0.64", "worker-2": "10.244.0.128"}


def test_every_node_has_vxlan_calico_and_felixs_routes(vxlan: Cluster) -> None:
    vxlan.wait_running("default", count=4)
    vxlan.synced(timeout=20)
    link = vxlan.exec("worker-1", "ip", "-d", "link", "show", "vxlan.calico", check=True).stdout
    assert "mtu 1450" in link and "vxlan id 4096 local 172.18.0.3 dev eth0" in link and "dstport 4789 nolearning" in link
    addr = vxlan.exec("worker-1", "ip", "-4", "addr", "show", "vxlan.calico", check=True).stdout
    assert f"inet {TUNNELS['worker-1']}/32" in addr
    routes = vxlan.exec("worker-1", "ip", "route", check=True).stdout
    assert "blackhole 10.244.0.64/26 proto 80" in routes, routes
    for node in ("control-plane", "worker-2"):
        block = f"{TUNNELS[node]}/26"
        assert f"{block} via {TUNNELS[node]} dev vxlan.calico proto 80 onlink" in routes, routes
    assert "proto bird" not in routes  # BIRD programs nothing of a VXLAN pool
    fdb = vxlan.exec("worker-1", "bridge", "fdb", "show", "dev", "vxlan.calico", check=True).stdout
    assert "dst 172.18.0.2 self permanent" in fdb and "dst 172.18.0.4 self permanent" in fdb
    assert "mtu 1450" in vxlan.exec("client", "ip", "link", "show", "eth0", check=True).stdout


def test_cross_node_traffic_is_vxlan_on_4789(vxlan: Cluster) -> None:
    vxlan.wait_running("default", count=4)
    client_pod = vxlan.pod("client")
    web = next(p for p in vxlan.get("pods", "default", "app=web") if p["spec"]["nodeName"] != client_pod["spec"]["nodeName"])
    target, node = web["status"]["podIP"], web["spec"]["nodeName"]
    capture = subprocess.Popen(["ip", "netns", "exec", vxlan.netns(node), "tcpdump", "-l", "-nn", "-c", "1", "-i", "eth0",
                                "udp port 4789"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        poll(lambda: vxlan.curl("client", f"http://{target}/").returncode == 0 and capture.poll() is not None,
             timeout=15, what=f"a VXLAN packet on {node}'s eth0")
        out = capture.stdout.read()
    finally:
        capture.kill()
    assert "VXLAN, flags [I] (0x08), vni 4096" in out, out
    assert client_pod["status"]["podIP"] in out and target in out, out
