"""Calico's objects written with kubectl on a running ``cni: calico`` cluster (issue #14).
IPPools, as Calico's docs move pods to a new pool (a new block size): the new pool applied, the
old one disabled, a rollout restart gives the pods addresses of the new pool in /28 blocks that
every node routes (BIRD), the old blocks released, the old pool deleted and gone from Felix's
NAT sets; a pod naming a pool by annotation gets its address there, one naming no pool that
exists stays Pending with Calico's reason; what the nodes cannot run is refused with the reason.
BGP, as Calico's docs set up a route reflector: annotate and label the node, the BGPPeer, the
mesh off; the workers' sessions go to the reflector alone and their routes arrive reflected;
then back to the mesh. Every wait is on the generation every node confirmed (its routes and BGP
sessions), not the API."""
from __future__ import annotations

import ipaddress
import re

from tests.cluster import ROOT, Cluster, kubectl, module_cluster, poll

pools = module_cluster("topologies/calico-pools.yaml")
NODES = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}
NEW = ipaddress.IPv4Network("10.244.64.0/18")
WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"""


def ctl(cluster: Cluster, *args: str, check: bool = True, input: str | None = None):
    return kubectl("--context", f"k8semu-{cluster.name}", *args, check=check, input=input)


def ipset(cluster: Cluster, node: str, name: str) -> list[str]:
    out = cluster.exec(node, "ipset", "list", name, check=True).stdout
    return sorted(out.split("Members:\n", 1)[1].split())


def test_pods_move_to_a_new_pool_with_a_new_block_size(pools: Cluster) -> None:
    pools.apply(WEB)
    old = {p["status"]["podIP"] for p in pools.wait_running("default", count=3)}
    assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("10.244.0.0/18") for ip in old)
    ctl(pools, "apply", "-f", str(ROOT / "topologies/manifests/new-pool.yaml"))
    ctl(pools, "patch", "ippool", "default-ipv4-ippool", "--type", "merge", "-p", '{"spec":{"disabled":true}}')
    listed = ctl(pools, "get", "ippools", "-o", "custom-columns=NAME:.metadata.name,CIDR:.spec.cidr,"
                 "SIZE:.spec.blockSize,DISABLED:.spec.disabled", "--no-headers").stdout.split("\n")
    assert [line.split() for line in listed if line] == [
        ["default-ipv4-ippool", "10.244.0.0/18", "26", "true"], ["new-pool", "10.244.64.0/18", "28", "<none>"]]
    ctl(pools, "rollout", "restart", "deployment", "web")
    ctl(pools, "rollout", "status", "deployment", "web", "--timeout=60s")

    def moved() -> list[dict] | None:
        running = pools.wait_running("default", count=3)
        return running if all(ipaddress.IPv4Address(p["status"]["podIP"]) in NEW for p in running) else None
    pods = poll(moved, what="every pod in the new pool")
    pools.synced(timeout=20)
    blocks = {}
    for node in NODES:
        table = pools.exec(node, "ip", "route", check=True).stdout
        assert "10.244.0." not in table, table  # every block of the old pool released as it emptied
        for block in re.findall(r"^blackhole (10\.244\.\S+/28) proto bird", table, re.M):
            blocks[block] = node
    assert blocks and all(ipaddress.IPv4Network(b).subnet_of(NEW) for b in blocks)
    for node in NODES:
        table = pools.exec(node, "ip", "route", check=True).stdout
        for block, owner in blocks.items():
            if owner != node:
                assert f"{block} via {NODES[owner]} dev eth0 proto bird" in table, table
    a, b = sorted(pods, key=lambda p: p["spec"]["nodeName"])[::len(pods) - 1]
    assert a["spec"]["nodeName"] != b["spec"]["nodeName"]
    assert pools.curl(a["metadata"]["name"], f"http://{b['status']['podIP']}/").returncode == 0
    assert ipset(pools, "worker-1", "cali40masq-ipam-pools") == ["10.244.0.0/18", "10.244.64.0/18"]
    ctl(pools, "delete", "ippool", "default-ipv4-ippool")
    poll(lambda: ipset(pools, "worker-1", "cali40all-ipam-pools") == ["10.244.64.0/18"], what="Felix's pool set")
    pools.synced(timeout=20)
    assert ctl(pools, "get", "ippools", "-o", "name").stdout.split() == ["ippool.crd.projectcalico.org/new-pool"]


def test_a_pod_names_its_pool_and_bad_pools_are_refused(pools: Cluster) -> None:
    ctl(pools, "apply", "-f", "-", input=(
        "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: pinned}\n"
        "spec: {cidr: 10.244.128.0/24, blockSize: 29, nodeSelector: '!all()'}\n"))
    for name, wanted in (("named", '["pinned"]'), ("missing", '["nope"]')):
        ctl(pools, "run", name, "--image=busybox", f"--annotations=cni.projectcalico.org/ipv4pools={wanted}",
            "--", "sleep", "3600")
    named = poll(lambda: pools.pod("named")["status"].get("podIP"), what="named's address")
    assert ipaddress.IPv4Address(named) in ipaddress.IPv4Network("10.244.128.0/24")

    def described() -> str | None:
        out = ctl(pools, "describe", "pod", "missing").stdout
        return out if "does not exist, or is not enabled" in out else None
    assert "the given pool (nope) does not exist, or is not enabled" in poll(described, what="missing's event")
    assert pools.pod("missing")["status"]["phase"] == "Pending"
    refused = ctl(pools, "apply", "-f", "-", check=False, input=(
        "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: clash}\n"
        "spec: {cidr: 10.244.128.0/25, vxlanMode: Always}\n"))
    assert refused.returncode != 0
    assert "overlaps with IPPool(pinned) CIDR 10.244.128.0/24" in refused.stderr, refused.stderr
    assert "set vxlanMode Never" in refused.stderr, refused.stderr
    pools.synced(timeout=20)
    ctl(pools, "delete", "pod", "named", "missing", "--wait=false")


def test_route_reflectors_as_calicos_docs_set_them_up_with_kubectl(pools: Cluster) -> None:
    pools.apply(WEB.replace("name: web", "name: spread").replace("app: web", "app: spread"))
    pools.wait_running("default", count=None)
    pools.synced(timeout=20)
    ctl(pools, "annotate", "node", "control-plane", "projectcalico.org/RouteReflectorClusterID=244.0.0.1")
    ctl(pools, "label", "node", "control-plane", "route-reflector=true")
    ctl(pools, "apply", "-f", "-", input=(
        "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: peer-with-route-reflectors}\n"
        "spec: {nodeSelector: all(), peerSelector: \"route-reflector == 'true'\"}\n"))
    ctl(pools, "patch", "bgpconfiguration", "default", "--type", "merge",
        "-p", '{"spec":{"nodeToNodeMeshEnabled":false}}')
    pools.synced(timeout=20)
    protocols = pools.exec("worker-2", "birdc", "show", "protocols", check=True).stdout
    assert re.search(r"^Node_172_18_0_2\s+BGP\s+---\s+up\s+\S+\s+Established", protocols, re.M), protocols
    assert "Mesh_" not in protocols and "172_18_0_3" not in protocols  # no session between the workers
    conf = pools.exec("control-plane", "cat", "/etc/bird/bird.conf", check=True).stdout
    assert conf.count("rr client;") == 2 and "configured as a route reflector with cluster ID 244.0.0.1" in conf
    table = pools.exec("worker-2", "ip", "route", check=True).stdout
    worker1 = re.findall(r"^blackhole (\S+) proto bird", pools.exec("worker-1", "ip", "route", check=True).stdout, re.M)
    assert worker1 and all(f"{b} via 172.18.0.3 dev eth0 proto bird" in table for b in worker1), table  # reflected
    ctl(pools, "patch", "bgpconfiguration", "default", "--type", "merge",
        "-p", '{"spec":{"nodeToNodeMeshEnabled":true}}')
    ctl(pools, "delete", "bgppeer", "peer-with-route-reflectors")
    ctl(pools, "annotate", "node", "control-plane", "projectcalico.org/RouteReflectorClusterID-")
    pools.synced(timeout=20)
    protocols = pools.exec("worker-2", "birdc", "show", "protocols", check=True).stdout
    assert re.search(r"^Mesh_172_18_0_3\s+BGP\s+---\s+up\s+\S+\s+Established", protocols, re.M), protocols


def test_a_pending_pod_schedules_once_kubectl_labels_a_node(pools: Cluster) -> None:
    ctl(pools, "run", "ssd", "--image=busybox", '--overrides={"spec":{"nodeSelector":{"disk":"ssd"}}}',
        "--", "sleep", "3600")
    described = poll(lambda: (out := ctl(pools, "describe", "pod", "ssd").stdout)
                     and "didn't match Pod's node affinity/selector" in out, what="ssd's FailedScheduling")
    assert described and pools.pod("ssd")["status"]["phase"] == "Pending"
    assert ctl(pools, "label", "node", "worker-2", "disk=ssd").stdout == "node/worker-2 labeled\n"
    running = poll(lambda: (p := pools.pod("ssd"))["status"]["phase"] == "Running" and p, what="ssd running")
    assert running["spec"]["nodeName"] == "worker-2"
    ctl(pools, "delete", "pod", "ssd", "--wait=false")
    ctl(pools, "label", "node", "worker-2", "disk-")
