"""kube-proxy beside the OpenFlow controller (``cni: openflow`` + ``kubeProxy.mode``, issue #13),
as Antrea runs with kube-proxy (``antreaProxy.proxyAll: false``): what arrives from outside and
what a node sends itself meets kube-proxy's rules in the node's kernel, what a pod sends meets
the switch; a node's data plane is in sync only once both hold the view. iptables mode in make
test, nftables mode in make slow. The whole Services lab on this plane runs in make slow
(``SERVICES_PLANES``)."""
from __future__ import annotations

import json

from tests.cluster import Cluster, k8semu, module_cluster, poll

NFT = "topologies/services-kube-proxy-nft.yaml"
beside = module_cluster("topologies/services-kube-proxy.yaml", NFT, slow=(NFT,))


def trace(*args: str) -> dict:
    done = k8semu("trace", *args, "-o", "json", check=False)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def rules_walked(out: dict) -> list[str]:
    """The chains the traced packet went through in the nodes' netfilter."""
    return [h["table"].split()[-1] for h in out["hops"] if h["kind"] == "rule"]


def kube_proxy_rules(cluster: Cluster, node: str) -> str:
    argv = ("nft", "list", "table", "ip", "kube-proxy") if cluster.kube_proxy == "nftables" else \
        ("iptables-save", "-t", "nat")
    return cluster.exec(node, *argv, check=True).stdout


def test_the_outside_meets_kube_proxy_and_pods_meet_the_switch(beside: Cluster) -> None:
    beside.synced(timeout=20)
    for node_ip in ("172.18.0.2", "172.18.0.4"):  # the control plane has no endpoint: kube-proxy forwards
        done = beside.exec("outside", "curl", "-s", "-m", "5", f"http://{node_ip}:30007/")
        assert done.returncode == 0 and "Welcome to nginx" in done.stdout, done
    outside = trace("external/outside", "node/worker-2", "--port", "30007")
    walked = rules_walked(outside)
    if beside.kube_proxy == "iptables":  # KUBE-NODEPORTS, then the Service's external chain
        assert "KUBE-NODEPORTS" in walked and any(c.startswith("KUBE-EXT-") for c in walked), walked
    else:  # the service-nodeports verdict map's goto
        assert "services" in walked and any(c.startswith("external-") for c in walked), walked
    assert outside["verdict"] == "delivered" and outside["live"]["agrees"], outside
    assert "dev k8semu-gw0" in outside["hops"][-1]["text"]  # then into the switch by the gateway
    node = trace("node/worker-1", "svc/web")  # the node's own traffic: kube-proxy's service chains
    assert node["verdict"] == "delivered" and node["live"]["agrees"], node
    assert any(c.startswith("KUBE-SVC-" if beside.kube_proxy == "iptables" else "service-") for c in rules_walked(node))
    pod = trace("client", "svc/web")  # a pod's: the controller's groups, no netfilter chain
    assert pod["verdict"] == "delivered" and not rules_walked(pod)
    assert any(h["kind"] == "group" for h in pod["hops"]), pod["hops"]
    nodeport = trace("client", "node/worker-1", "--port", "30007")  # the switch hands it to the node: kube-proxy
    kinds = [h["kind"] for h in nodeport["hops"]]
    assert "table" in kinds and "leave" in kinds and "rule" in kinds and kinds.index("leave") < kinds.index("rule"), kinds
    assert nodeport["verdict"] == "delivered" and nodeport["live"]["agrees"], nodeport


def test_a_local_policy_keeps_the_client_and_a_node_without_endpoint_drops(beside: Cluster) -> None:
    """echo (externalTrafficPolicy: Local, one pod on worker-1): from outside through worker-1
    the pod sees the client's own address; worker-2 has no local endpoint and drops it, as
    kube-proxy's KUBE-SVL chain does."""
    here = beside.exec("outside", "curl", "-s", "-m", "5", "http://172.18.0.3:30080/")
    assert here.returncode == 0 and "172.18.0.254" in here.stdout, here
    there = beside.exec("outside", "curl", "-s", "-m", "2", "http://172.18.0.4:30080/")
    assert there.returncode != 0, there


def test_a_node_is_in_sync_only_once_its_kube_proxy_holds_the_change(beside: Cluster) -> None:
    """Waiting on the generation each node confirmed (switch and kube-proxy): once synced, a
    deleted endpoint is out of every node's kube-proxy rules and a new one is in."""
    pods = {p["metadata"]["name"]: p["status"]["podIP"] for p in beside.get("pods", "default", "app=web")}
    name, ip = sorted(pods.items())[0]
    k8semu("delete", "pod", name)
    beside.synced(timeout=20)
    fresh = poll(lambda: [p["status"].get("podIP") for p in beside.get("pods", "default", "app=web")
                          if p["metadata"]["name"] not in pods and p["status"].get("podIP")
                          and any(c.get("type") == "Ready" and c.get("status") == "True"
                                  for c in p["status"].get("conditions", []))],
                 timeout=20, what="the replacement web pod to be ready")
    beside.synced(timeout=20)
    for node in ("control-plane", "worker-1", "worker-2"):
        rules = kube_proxy_rules(beside, node)
        assert f"{fresh[0]}:80" in rules, (node, fresh, rules)
        assert fresh[0] == ip or f"{ip}:80" not in rules, (node, ip, rules)  # an address may be handed out again


def test_kube_proxys_servers_answer_and_say_the_mode(beside: Cluster) -> None:
    mode = beside.exec("worker-1", "curl", "-s", "-m", "3", "http://127.0.0.1:10249/proxyMode", check=True).stdout
    assert mode.strip() == beside.kube_proxy
    health = beside.exec("outside", "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
                         "http://172.18.0.3:10256/healthz").stdout
    assert health == "200"
    daemons = k8semu("get", "daemonsets", "-n", "kube-system", "-o", "json").stdout
    names = {d["metadata"]["name"] for d in json.loads(daemons)["items"]}
    assert "kube-proxy" in names, names
