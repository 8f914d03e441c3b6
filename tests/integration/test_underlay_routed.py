"""Nodes in two underlay subnets with the underlay router between them
(topologies/calico-crosssubnet.yaml: control-plane and worker-1 in 172.18.0.0/24, worker-2 in
172.18.1.0/24): the router is one hop (TTL 63) and holds nothing but the underlay, BGP's
sessions cross it, and Calico's VXLANCrossSubnet encapsulates only what crosses it (worker-1
reaches control-plane's pods straight over eth0, worker-2's through vxlan.calico). The same
underlay on flannel (VXLAN) and openflow; all three in make slow (make test's budget). Waits are on the nodes' kernels and
the generation each node confirmed."""
from __future__ import annotations

import json
import re
import subprocess
import time
from contextlib import contextmanager
from typing import Iterator

from tests.cluster import Cluster, k8semu, module_cluster, poll

PLANES = ("topologies/calico-crosssubnet.yaml", "topologies/flannel-racks.yaml", "topologies/racks.yaml")
racks = module_cluster(*PLANES, slow=PLANES)  # all in make slow (make test's budget)
POD = "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{rack: test}}}}\nspec:\n  nodeName: {node}\n" \
      "  containers: [{{name: c, image: nginx:1.25}}]\n"


@contextmanager
def capture(cluster: Cluster, node: str, *bpf: str) -> Iterator[subprocess.Popen]:
    """tcpdump on the node's eth0, once it says it listens; stopped by PID after."""
    proc = subprocess.Popen(["ip", "netns", "exec", cluster.netns(node), "tcpdump", "-l", "-nn", "-i", "eth0", *bpf],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "listening on" not in proc.stderr.readline():
            pass
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_router_joins_the_subnets_and_nothing_else(racks: Cluster) -> None:
    racks.synced(timeout=20)
    addr = racks.exec("worker-2", "ip", "-4", "-o", "addr", "show", "eth0", check=True).stdout
    assert "inet 172.18.1.2/24" in addr, addr
    assert "via 172.18.1.1 dev eth0" in racks.exec("worker-2", "ip", "route", "get", "172.18.0.3", check=True).stdout
    assert "ttl=63" in racks.exec("worker-1", "ping", "-c", "1", "-W", "2", "172.18.1.2", check=True).stdout
    assert racks.exec("outside", "ping", "-c", "1", "-W", "2", "172.18.1.2").returncode == 0
    router = subprocess.run(["ip", "-n", racks.netns("_router"), "-o", "link"], capture_output=True, text=True,
                            check=True).stdout
    assert sorted(re.findall(r"^\d+: ([^:@]+)", router, re.M)) == ["eth0", "lo"], router
    routes = subprocess.run(["ip", "-n", racks.netns("_router"), "-4", "route"], capture_output=True, text=True,
                            check=True).stdout
    assert sorted(line.split()[0] for line in routes.splitlines()) == ["172.18.0.0/24", "172.18.1.0/24"], routes
    if racks.cni == "calico":  # BGP's sessions cross the router (iBGP, multihop)
        protocols = racks.exec("worker-2", "birdc", "show", "protocols", check=True).stdout
        for peer in ("Mesh_172_18_0_2", "Mesh_172_18_0_3"):
            assert re.search(rf"^{peer}\s+BGP\s+---\s+up\s+\S+\s+Established", protocols, re.M), protocols


def test_pods_reach_across_and_only_what_crosses_the_router_is_encapsulated(racks: Cluster) -> None:
    for name, node in (("a", "worker-1"), ("b", "control-plane"), ("c", "worker-2")):
        racks.apply(POD.format(name=name, node=node))
    poll(lambda: all(racks.pod(n)["status"].get("phase") == "Running" for n in "abc"), timeout=30,
         what="a, b and c running")
    racks.synced(timeout=20)
    ips = {name: racks.pod(name)["status"]["podIP"] for name in "abc"}
    if racks.cni == "calico":
        routes = racks.exec("worker-1", "ip", "route", check=True).stdout
        assert re.search(r" via 172\.18\.0\.2 dev eth0 proto 80 onlink", routes), routes
        assert re.search(r" via \S+ dev vxlan\.calico proto 80 onlink", routes), routes
        with capture(racks, "worker-1", "tcp", "port", "80", "and", "host", ips["b"]) as plain:
            assert racks.curl("a", f"http://{ips['b']}/").returncode == 0
            line = poll(lambda: plain.stdout.readline(), timeout=10, what="a's packet to b, plain on eth0")
        assert f"{ips['a']}." in line and f"{ips['b']}.80" in line, line
    # Flannel's VXLAN is on 8472 (tcpdump would print it as OTV): decode both as VXLAN
    with capture(racks, "worker-1", "-T", "vxlan", "udp", "port", "4789", "or", "udp", "port", "8472") as tunnel:
        assert racks.curl("a", f"http://{ips['c']}/").returncode == 0
        outer = poll(lambda: tunnel.stdout.readline(), timeout=10, what="a's packet to c in VXLAN on eth0")
        inner = tunnel.stdout.readline()
    assert "172.18.0.3" in outer and "172.18.1.2" in outer and "VXLAN" in outer, outer
    assert ips["a"] in inner and ips["c"] in inner, inner
    if racks.cni == "openflow":  # the static trace names the router the outer packet crosses
        done = k8semu("--cluster", racks.name, "trace", "a", "pod/c", "--port", "80", "-o", "json")
        hops = json.loads(done.stdout)["hops"]
        kinds = [h["kind"] for h in hops]
        assert kinds[kinds.index("tunnel") + 1] == "route", kinds
        assert "via 172.18.0.1 dev eth0 (the underlay router" in hops[kinds.index("tunnel") + 1]["text"], hops
    for name in "abc":
        racks.client.delete("Pod", "default", name)
