"""Calico with a route reflector and a pool of two /28 blocks for three nodes
(topologies/calico-rr.yaml): one BGP session per worker, the reflector with a session per node,
an address borrowed from another node's block and routed as a /32 by BIRD, and BIRD stopped on a
node: its routes are withdrawn from the others and return when the manager's supervisor has
started it again; on the reflector, the workers lose each other's routes until it is back. Waits
are on the nodes' kernels."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from emulator.calico.cniplugin import veth_name
from tests.cluster import Cluster, k8semu, kubectl, module_cluster, poll

rr = module_cluster("topologies/calico-rr.yaml")
NODES = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}
POD = "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n" \
      "  containers: [{{name: c, image: nginx:1.25}}]\n"


def established(cluster: Cluster, node: str) -> list[str]:
    out = cluster.exec(node, "birdc", "show", "protocols", check=True).stdout
    return sorted(m.group(1) for m in re.finditer(r"^(\S+)\s+BGP\s+\S+\s+up\s+\S+\s+Established", out, re.M))


def routes(cluster: Cluster, node: str) -> str:
    return cluster.exec(node, "ip", "route", check=True).stdout


def route_monitor(cluster: Cluster, node: str, path: Path) -> tuple[subprocess.Popen, Path]:
    """``ip monitor route`` in the node's namespace, writing to ``path``, until terminated;
    returned once it is listening: it has seen a marker route come and go in a table of its own
    (250: not the main table BIRD's kernel protocol reads)."""
    netns = cluster.netns(node)
    with open(path, "w") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", netns, "ip", "monitor", "route"],
                                stdout=out, stderr=subprocess.STDOUT)
    marker = ["blackhole", "192.0.2.255/32", "table", "250"]

    def seen() -> bool:
        subprocess.run(["ip", "netns", "exec", netns, "ip", "route", "replace", *marker], check=True)
        subprocess.run(["ip", "netns", "exec", netns, "ip", "route", "del", *marker], check=True)
        return "192.0.2.255" in path.read_text()
    poll(seen, timeout=10, what=f"ip monitor listening on {node}")
    return proc, path


def test_workers_peer_with_the_reflector_only(rr: Cluster) -> None:
    poll(lambda: established(rr, "control-plane") == ["Node_172_18_0_3", "Node_172_18_0_4"], timeout=20,
         what="the reflector's sessions")
    assert poll(lambda: established(rr, "worker-1") == ["Node_172_18_0_2"], timeout=20, what="worker-1's one session")
    conf = rr.exec("control-plane", "cat", "/etc/bird/bird.conf", check=True).stdout
    assert conf.count("rr client;") == 2 and "rr cluster id 244.0.0.1;" in conf
    # what Calico's docs have a user write for this, as kubectl reads it back
    context = ("--context", f"k8semu-{rr.name}")
    bgp = json.loads(kubectl(*context, "get", "bgpconfiguration", "default", "-o", "json").stdout)
    assert bgp["spec"]["nodeToNodeMeshEnabled"] is False
    [peer] = json.loads(kubectl(*context, "get", "bgppeers", "-o", "json").stdout)["items"]
    assert (peer["metadata"]["name"], peer["spec"]) == (
        "peer-with-route-reflectors", {"nodeSelector": "all()", "peerSelector": "route-reflector == 'true'"})
    assert kubectl(*context, "get", "nodes", "-l", "route-reflector=true", "-o", "name").stdout == "node/control-plane\n"
    annotations = json.loads(kubectl(*context, "get", "node", "control-plane", "-o", "json").stdout)["metadata"]["annotations"]
    assert annotations["projectcalico.org/RouteReflectorClusterID"] == "244.0.0.1"


def test_a_borrowed_address_is_routed_as_a_32_and_bird_stopping_withdraws_routes(rr: Cluster, tmp_path: Path) -> None:
    # b first: worker-1 claims the first block, control-plane the second, and worker-2, finding
    # both claimed, borrows from worker-1's (a block a reflector owns is not reflected: docs)
    for name, node in (("b", "worker-1"), ("a", "control-plane"), ("c", "worker-2")):
        rr.apply(POD.format(name=name, node=node))
        poll(lambda name=name: rr.pod(name)["status"].get("podIP"), timeout=20, what=f"{name}'s address")
    rr.wait_running("default", count=3)
    rr.synced(timeout=30)
    ips = {name: rr.pod(name)["status"]["podIP"] for name in "abc"}
    shown = k8semu("--cluster", rr.name, "ipam", "show", "--show-blocks", "--show-borrowed").stdout
    assert re.search(rf"^{re.escape(ips['c'])}\s+worker-2\s+10\.244\.0\.0/28\s+host:worker-1", shown, re.M), shown
    assert f"{ips['c']} dev {veth_name('default', 'c')} scope link" in routes(rr, "worker-2")
    for node in ("control-plane", "worker-1"):  # reflected to worker-1 with worker-2 as the next hop
        assert f"{ips['c']} via {NODES['worker-2']} dev eth0 proto bird" in routes(rr, node)
    assert rr.curl("a", f"http://{ips['c']}/").returncode == 0
    assert rr.curl("b", f"http://{ips['c']}/").returncode == 0

    # BIRD stopped on worker-1 (SIGTERM: it closes its session, as a stopped calico-node does):
    # the reflector withdraws worker-1's block from everyone; the supervisor starts BIRD again
    # (after BIRD's one-second connect delay the session is back) and the routes return
    block = re.compile(r"^10\.244\.0\.0/28 via 172\.18\.0\.3 dev eth0 proto bird", re.M)
    assert block.search(routes(rr, "control-plane")) and block.search(routes(rr, "worker-2"))
    # the kernel's own record of the withdrawal (``ip monitor``): the route is gone only until the
    # restarted BIRD's session is back, a second or two, which polling the table can miss
    deleted = re.compile(r"^Deleted 10\.244\.0\.0/28 via 172\.18\.0\.3 dev eth0 proto bird", re.M)
    monitors = {node: route_monitor(rr, node, tmp_path / f"{node}.routes") for node in ("control-plane", "worker-2")}
    try:
        bird = rr.client.status()["helpers"]["bird worker-1"]["pid"]
        os.kill(bird, signal.SIGTERM)
        poll(lambda: all(deleted.search(path.read_text()) for _, path in monitors.values()),
             timeout=20, what="worker-1's block withdrawn on the others")
    finally:
        for proc, _ in monitors.values():
            proc.terminate()
            proc.wait(5)
    poll(lambda: rr.client.status()["helpers"]["bird worker-1"]["pid"] != bird, timeout=20, what="BIRD restarted")
    poll(lambda: block.search(routes(rr, "control-plane")) and block.search(routes(rr, "worker-2")), timeout=30,
         what="worker-1's block routed again")
    assert rr.curl("a", f"http://{ips['b']}/").returncode == 0


# in make slow (make test's budget): a stopped BIRD's routes withdrawn is the test above's
@pytest.mark.slow
def test_the_route_reflector_going_down_takes_the_workers_routes_with_it(rr: Cluster) -> None:
    """The workers peer with the reflector only: with BIRD stopped on control-plane, worker-2
    loses the route to worker-1's block (worker-1's pod b) until the reflector is back."""
    rr.synced(timeout=30)
    w1_block = re.compile(r"^10\.244\.0\.0/28 via 172\.18\.0\.3 dev eth0 proto bird", re.M)
    poll(lambda: w1_block.search(routes(rr, "worker-2")), timeout=20, what="worker-1's block reflected to worker-2")
    bird = rr.client.status()["helpers"]["bird control-plane"]["pid"]
    os.kill(bird, signal.SIGTERM)
    poll(lambda: not w1_block.search(routes(rr, "worker-2")), timeout=20, interval=0.01,
         what="the reflected route withdrawn")
    poll(lambda: w1_block.search(routes(rr, "worker-2")), timeout=30, what="the reflector back and the route with it")
    assert rr.curl("c", f"http://{rr.pod('b')['status']['podIP']}/").returncode == 0
