"""kubernetes/kubernetes test/e2e/network/service.go and loadbalancer.go, transcribed where
k8semu failed them; each test is named after the e2e test it follows. The others are covered
by tests/integration/test_services.py (docs/conformance.md maps every one)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from emulator.pipeline.tables import table_id
from tests.cluster import SERVICES_PLANES, Cluster, k8semu, module_cluster, poll

OTHER_PLANES = SERVICES_PLANES  # make slow (the budget)
services_cluster = module_cluster("topologies/services.yaml", *OTHER_PLANES, slow=OTHER_PLANES)


def service(name: str, labels: str = "", extra: str = "") -> str:
    meta = f"{{name: {name}{', labels: {' + labels + '}' if labels else ''}}}"
    return (f"apiVersion: v1\nkind: Service\nmetadata: {meta}\n"
            f"spec: {{selector: {{app: web}}, ports: [{{port: 80}}]{extra}}}\n")


def cluster_ip(cluster: Cluster, name: str) -> str:
    return json.loads(k8semu("--cluster", cluster.name, "get", "svc", name, "-o", "json").stdout)["spec"]["clusterIP"]


def answers(cluster: Cluster, ip: str) -> bool:
    return cluster.exec("client", "curl", "-s", "-o", "/dev/null", "-m", "2", f"http://{ip}/").returncode == 0


LABELS = ["service.kubernetes.io/service-proxy-name: foo-bar", "service.kubernetes.io/headless: ''"]


@pytest.mark.parametrize("label", LABELS)
def test_should_implement_service_kubernetes_io_service_proxy_name_and_headless(
        services_cluster: Cluster, label: str) -> None:
    """e2e: "should implement service.kubernetes.io/service-proxy-name" and "... /headless":
    kube-proxy leaves a Service carrying the label alone; removing the label serves it."""
    name = "skip-" + label.split("/")[1].split(":")[0]
    services_cluster.apply(service(name, label))
    services_cluster.apply(service("plain"))
    services_cluster.synced()
    assert answers(services_cluster, cluster_ip(services_cluster, "plain"))
    assert not answers(services_cluster, cluster_ip(services_cluster, name))
    services_cluster.apply(service(name))  # the label removed
    services_cluster.synced()
    assert answers(services_cluster, cluster_ip(services_cluster, name))


def test_loadbalancer_class_of_another_implementation_gets_no_address(services_cluster: Cluster) -> None:
    """loadbalancer.go "should not have a LoadBalancer IP for a Service of another
    loadBalancerClass": the built-in pool (k8semu's MetalLB) serves class-less Services only."""
    services_cluster.apply(service("other-class", extra=", type: LoadBalancer, loadBalancerClass: example.com/other"))
    services_cluster.apply(service("default-class", extra=", type: LoadBalancer"))
    got = {s["metadata"]["name"]: s for s in services_cluster.get("svc", "default")}
    assert got["other-class"]["status"]["loadBalancer"] == {}
    assert got["other-class"]["spec"]["loadBalancerClass"] == "example.com/other"
    assert got["default-class"]["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("10.50.100.")


def test_should_be_able_to_reach_a_service_through_its_external_ip(services_cluster: Cluster) -> None:
    """The externalIPs e2e checks (service.go: a Service with spec.externalIPs answers there):
    a node that traffic for the address reaches DNATs it to the Service, from outside (routed to
    worker-1 by whoever owns the address, here a route on the outside host) and from a pod;
    kubectl's EXTERNAL-IP column shows the address."""
    services_cluster.apply(service("ext-ips", extra=", externalIPs: [192.0.2.10]"))
    got = json.loads(k8semu("--cluster", services_cluster.name, "get", "svc", "ext-ips", "-o", "json").stdout)
    assert got["spec"]["externalIPs"] == ["192.0.2.10"]
    table = k8semu("--cluster", services_cluster.name, "get", "svc", "ext-ips").stdout.splitlines()
    assert table[1].split()[3] == "192.0.2.10"
    services_cluster.synced()
    assert answers(services_cluster, "192.0.2.10")
    outside = ["ip", "netns", "exec", services_cluster.netns("outside")]
    subprocess.run(outside + ["ip", "route", "add", "192.0.2.10/32", "via", "172.18.0.3"], check=True)
    try:
        reply = services_cluster.curl("outside", "http://192.0.2.10/")
        assert reply.returncode == 0 and "pod: web-" in reply.stdout
        assert services_cluster.curl("outside", "http://192.0.2.10:81/", timeout=2).returncode != 0  # only its ports
    finally:
        subprocess.run(outside + ["ip", "route", "del", "192.0.2.10/32"], check=False)


NODES = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}


def health(cluster: Cluster, node: str, port: int) -> tuple[str, dict | None]:
    """(HTTP status, JSON body) of a node's health check port, asked from outside the cluster."""
    got = cluster.exec("outside", "curl", "-s", "-m", "2", "-w", "\n%{http_code}",
                       f"http://{NODES[node]}:{port}/healthz")
    if got.returncode != 0:
        return f"curl exit {got.returncode}", None
    body, _, code = got.stdout.rpartition("\n")
    return code, json.loads(body)


def local_load_balancer(cluster: Cluster, name: str) -> dict:
    """A LoadBalancer Service with externalTrafficPolicy Local in front of the echo pod, as the
    API server returns it."""
    cluster.apply(f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
                  "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {app: echo}\n"
                  "  ports: [{port: 80, targetPort: http}]\n")
    return json.loads(k8semu("--cluster", cluster.name, "get", "svc", name, "-o", "json").stdout)


def test_esipp_should_work_for_type_loadbalancer_and_only_target_nodes_with_endpoints(
        services_cluster: Cluster) -> None:
    """loadbalancer.go "[Feature:LoadBalancer] ESIPP ... should work for type=LoadBalancer" and
    "should only target nodes with endpoints": a Local LoadBalancer gets a healthCheckNodePort;
    every node answers it, 200 with its local endpoint count where the Service has a ready
    endpoint, 503 elsewhere; the address is announced only from such a node, and a client
    from outside reaches the endpoint with its own address."""
    try:
        svc = local_load_balancer(services_cluster, "echo-local")
        port, lb_ip = svc["spec"]["healthCheckNodePort"], svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        assert 30000 <= port <= 32767 and port != svc["spec"]["ports"][0]["nodePort"]
        described = k8semu("--cluster", services_cluster.name, "describe", "svc", "echo-local").stdout
        assert re.search(rf"^HealthCheck NodePort:\s+{port}$", described, re.M), described
        echo_node = services_cluster.get("pods", "default", "app=echo")[0]["spec"]["nodeName"]
        services_cluster.synced()
        for node in NODES:
            want = ("200", 1) if node == echo_node else ("503", 0)
            got = poll(lambda node=node: (lambda r: r if r[1] else None)(health(services_cluster, node, port)),
                       timeout=10, what=f"{node} to answer on its health check port")
            assert (got[0], got[1]["localEndpoints"]) == want, node
            assert got[1]["service"] == {"namespace": "default", "name": "echo-local"}
        assert holder(services_cluster, lb_ip) == echo_node
        reply = services_cluster.curl("outside", f"http://{lb_ip}/")
        assert reply.returncode == 0 and json.loads(reply.stdout)["client"] == "172.18.0.254"
    finally:
        k8semu("--cluster", services_cluster.name, "delete", "svc", "echo-local", check=False)
    services_cluster.synced()
    poll(lambda: all(health(services_cluster, n, port)[1] is None for n in NODES), timeout=10,
         what="the health check ports to close with the Service")
    assert holder(services_cluster, lb_ip) is None


def test_a_health_check_port_held_by_another_process_is_served_once_it_is_free(
        services_cluster: Cluster) -> None:
    """kube-proxy retries a health check server that cannot bind: a Local LoadBalancer's
    healthCheckNodePort held on worker-1 by another process (as a listener still closing holds
    it) is served there within a few seconds of being let go, with no other change to the
    cluster; worker-2 serves it from the start."""
    port = 31999
    assert port not in {p.get("nodePort") for s in services_cluster.get("svc") for p in s["spec"].get("ports", [])}
    holder_code = ("import socket, sys, time; s = socket.socket(); "
                   "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                   f"s.bind(('0.0.0.0', {port})); s.listen(); print('held', flush=True); time.sleep(60)")
    other = subprocess.Popen(["ip", "netns", "exec", services_cluster.netns("worker-1"), sys.executable, "-c",
                              holder_code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        services_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: hc-held}\nspec:\n"
                               "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {app: echo}\n"
                               f"  healthCheckNodePort: {port}\n  ports: [{{port: 80, targetPort: http}}]\n")
        services_cluster.synced()
        poll(lambda: health(services_cluster, "worker-2", port)[1], timeout=10, what="worker-2's listener")
        other.kill()
        other.wait(timeout=5)
        poll(lambda: health(services_cluster, "worker-1", port)[1], timeout=5,
             what="worker-1 to serve the port once it is free")
    finally:
        if other.poll() is None:
            other.kill()
        k8semu("--cluster", services_cluster.name, "delete", "svc", "hc-held", check=False)


def holder(cluster: Cluster, ip: str) -> str | None:
    """The node whose eth0 holds the LoadBalancer address (MetalLB's L2 announcer)."""
    for node in NODES:
        addrs = subprocess.run(["ip", "-n", cluster.netns(node), "-4", "-o", "addr", "show", "eth0"],
                               capture_output=True, text=True).stdout
        if f" {ip}/32 " in addrs:
            return node
    return None


def test_esipp_should_work_from_pods(services_cluster: Cluster) -> None:
    """loadbalancer.go "ESIPP ... should work from pods", and the same for the node's NodePort:
    a pod calling its own node's NodePort, or a LoadBalancer address, of a Local Service is
    short-circuited to the Service (any endpoint, as kube-proxy's KUBE-EXT chain does), on a
    node with an endpoint and on one without, and the endpoint sees the pod's own address."""
    try:
        svc = local_load_balancer(services_cluster, "echo-local-pods")
        lb_ip, node_port = svc["status"]["loadBalancer"]["ingress"][0]["ip"], svc["spec"]["ports"][0]["nodePort"]
        services_cluster.synced()
        pods = [p for p in services_cluster.get("pods", "default") if p["metadata"]["labels"].get("app") == "web"]
        assert {p["spec"]["nodeName"] for p in pods} == {"worker-1", "worker-2"}  # with and without an endpoint
        for pod in pods:
            name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
            for url in (f"http://{NODES[node]}:{node_port}/", f"http://{lb_ip}/"):
                reply = poll(lambda url=url, name=name: (lambda r: r.returncode == 0 and r)(
                    services_cluster.curl(name, url, timeout=2)), timeout=10, what=f"{name} to reach {url}")
                assert json.loads(reply.stdout)["client"] == pod["status"]["podIP"], (name, url)
    finally:
        k8semu("--cluster", services_cluster.name, "delete", "svc", "echo-local-pods", check=False)


def test_external_ips_of_a_local_service_keep_the_client_address(services_cluster: Cluster) -> None:
    """kube-proxy applies externalTrafficPolicy to a Service's external IPs as to its other
    external destinations: the node an external IP is routed to keeps the client's address and
    answers only with its own endpoints; a pod's call is short-circuited to the Service."""
    services_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: echo-ext-local}\nspec:\n"
                           "  type: NodePort\n  externalTrafficPolicy: Local\n  selector: {app: echo}\n"
                           "  externalIPs: [192.0.2.11]\n  ports: [{port: 80, targetPort: http}]\n")
    outside = ["ip", "netns", "exec", services_cluster.netns("outside")]
    echo_node = services_cluster.get("pods", "default", "app=echo")[0]["spec"]["nodeName"]
    other = next(n for n in NODES if n not in (echo_node, "control-plane"))
    try:
        services_cluster.synced()
        subprocess.run(outside + ["ip", "route", "add", "192.0.2.11/32", "via", NODES[echo_node]], check=True)
        reply = services_cluster.curl("outside", "http://192.0.2.11/")
        assert reply.returncode == 0 and json.loads(reply.stdout)["client"] == "172.18.0.254"
        subprocess.run(outside + ["ip", "route", "replace", "192.0.2.11/32", "via", NODES[other]], check=True)
        assert services_cluster.curl("outside", "http://192.0.2.11/", timeout=2).returncode == 28  # no endpoint
        assert answers(services_cluster, "192.0.2.11")
    finally:
        subprocess.run(outside + ["ip", "route", "del", "192.0.2.11/32"], check=False)
        k8semu("--cluster", services_cluster.name, "delete", "svc", "echo-ext-local", check=False)


def hostport_pod(name: str, host_ip: str, protocol: str, node: str = "worker-1", pinned: bool = True) -> str:
    where = f"nodeName: {node}" if pinned else f"nodeSelector: {{kubernetes.io/hostname: {node}}}"
    host = f", hostIP: '{host_ip}'" if host_ip else ""
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: hostport}}\nspec:\n  {where}\n"
            "  containers:\n    - name: agnhost\n      image: k8semu/echo\n"
            "      env: [{name: PORT, value: '8080'}, {name: UDP_PORT, value: '8080'}]\n"
            f"      ports: [{{containerPort: 8080, hostPort: 54323, protocol: {protocol}{host}}}]\n")


def test_hostport_validates_that_there_is_no_conflict_between_pods_with_same_hostport_but_different_hostip_and_protocol(
        services_cluster: Cluster) -> None:
    """hostport.go [Conformance]: three pods on one node share hostPort 54323 (127.0.0.1/TCP,
    the node's address/TCP, the node's address/UDP); from the node, each answers on its own.
    Beyond the e2e test: a client outside and a pod reach the node's hostPort, and a fourth pod
    wanting the port on that node stays Pending as kube-scheduler leaves it."""
    node_ip = NODES["worker-1"]
    services_cluster.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: hostport}\n---\n" + "---\n".join(
        (hostport_pod("pod1", "127.0.0.1", "TCP"), hostport_pod("pod2", node_ip, "TCP"),
         hostport_pod("pod3", node_ip, "UDP"))))
    try:
        services_cluster.wait_running("hostport", count=3)
        services_cluster.synced()
        on_node = ["ip", "netns", "exec", services_cluster.netns("worker-1")]

        def pod_name(cmd: list[str]) -> str:
            done = subprocess.run(on_node + cmd, capture_output=True, text=True, timeout=10)
            return json.loads(done.stdout)["pod"] if done.returncode == 0 and done.stdout.startswith("{") else ""

        # "curl --interface hostIP http://127.0.0.1:54323" and "curl http://hostIP:54323", from the node
        poll(lambda: pod_name(["curl", "-s", "-m", "5", "--interface", node_ip, "http://127.0.0.1:54323/"]) == "pod1",
             timeout=10, what="pod1 on 127.0.0.1:54323")
        assert pod_name(["curl", "-s", "-m", "5", "http://127.0.0.1:54323/"]) == "pod1"  # from loopback too
        assert pod_name(["curl", "-s", "-m", "5", f"http://{node_ip}:54323/"]) == "pod2"
        udp = subprocess.run(on_node + ["sh", "-c", f"echo ping | nc -u -w2 {node_ip} 54323"], capture_output=True,
                             text=True, timeout=10)
        assert udp.stdout.strip() == "pod3: ping"
        reply = services_cluster.curl("outside", f"http://{node_ip}:54323/")
        assert reply.returncode == 0 and json.loads(reply.stdout)["pod"] == "pod2"
        assert json.loads(reply.stdout)["client"] == "172.18.0.254"  # portmap keeps an outside client's address
        from_pod = services_cluster.curl("client", f"http://{node_ip}:54323/")
        assert from_pod.returncode == 0 and json.loads(from_pod.stdout)["pod"] == "pod2"
        services_cluster.apply(hostport_pod("pod4", "", "TCP", pinned=False))
        pod4 = poll(lambda: (lambda p: p if p["status"].get("conditions") else None)(
            services_cluster.pod("pod4", "hostport")), timeout=10, what="pod4 to be looked at by the scheduler")
        assert pod4["status"]["phase"] == "Pending" and "didn't have free ports for the requested pod ports" in \
            json.dumps(pod4["status"]), pod4["status"]
    finally:
        k8semu("--cluster", services_cluster.name, "delete", "namespace", "hostport", "--wait=false", check=False)


def echo_service(name: str, spec: str) -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {spec}\n"


def reaches(cluster: Cluster, ip: str, port: int, protocol: str = "TCP") -> bool:
    """The client pod gets an answer from an echo pod over TCP (HTTP) or UDP."""
    if protocol == "UDP":
        done = cluster.exec("client", "sh", "-c", f"echo ping | nc -u -w2 {ip} {port}")
        return done.stdout.strip().endswith(": ping")
    return "echo-" in cluster.exec("client", "curl", "-s", "-m", "3", f"http://{ip}:{port}/").stdout


def test_should_work_after_the_service_has_been_recreated(services_cluster: Cluster) -> None:
    """service.go "should work after the service has been recreated": up, deleted (gone from
    the API), created again under the same name: up through its new cluster IP."""
    name = services_cluster.name
    spec = "{selector: {app: echo}, ports: [{port: 80, targetPort: 80}]}"
    services_cluster.apply(echo_service("service-deletion", spec))
    services_cluster.synced()
    assert reaches(services_cluster, cluster_ip(services_cluster, "service-deletion"), 80)
    k8semu("--cluster", name, "delete", "svc", "service-deletion")
    assert "service-deletion" not in {s["metadata"]["name"] for s in services_cluster.get("svc", "default")}
    services_cluster.apply(echo_service("service-deletion", spec))
    services_cluster.synced()
    try:
        assert reaches(services_cluster, cluster_ip(services_cluster, "service-deletion"), 80)
    finally:
        k8semu("--cluster", name, "delete", "svc", "service-deletion", check=False)


def test_should_be_able_to_update_service_type_to_nodeport_listening_on_same_port_number_but_different_protocols(
        services_cluster: Cluster) -> None:
    """service.go: a TCP ClusterIP Service becomes a NodePort one (reachable on a node's
    address and its nodePort), then gets a UDP port of the same number: two nodePorts, both
    protocols answer through the cluster IP and the node."""
    name, svc = services_cluster.name, "nodeport-update-service"
    services_cluster.apply(echo_service(svc, "{selector: {app: echo}, ports: [{port: 80, targetPort: 80}]}"))
    try:
        tcp = "{name: tcp-port, port: 80, protocol: TCP, targetPort: 80}"
        services_cluster.apply(echo_service(svc, f"{{type: NodePort, selector: {{app: echo}}, ports: [{tcp}]}}"))
        services_cluster.synced()
        got = json.loads(k8semu("--cluster", name, "get", "svc", svc, "-o", "json").stdout)["spec"]
        assert got["type"] == "NodePort" and got["ports"][0]["nodePort"]
        assert reaches(services_cluster, NODES["worker-2"], got["ports"][0]["nodePort"])
        udp = "{name: udp-port, port: 80, protocol: UDP, targetPort: 5353}"
        services_cluster.apply(echo_service(svc, f"{{type: NodePort, selector: {{app: echo}}, ports: [{tcp}, {udp}]}}"))
        services_cluster.synced()
        got = json.loads(k8semu("--cluster", name, "get", "svc", svc, "-o", "json").stdout)["spec"]
        ports = {p["protocol"]: p["nodePort"] for p in got["ports"]}
        assert len(got["ports"]) == 2 and all(ports.values()), got["ports"]
        assert reaches(services_cluster, got["clusterIP"], 80, "TCP")
        assert reaches(services_cluster, got["clusterIP"], 80, "UDP")
        assert reaches(services_cluster, NODES["worker-2"], ports["TCP"], "TCP")
        assert reaches(services_cluster, NODES["worker-2"], ports["UDP"], "UDP")
    finally:
        k8semu("--cluster", name, "delete", "svc", svc, check=False)


@pytest.mark.parametrize("target", ["ClusterIP", "NodePort"])
def test_should_be_able_to_change_the_type_from_externalname(services_cluster: Cluster, target: str) -> None:
    """service.go [Conformance] "should be able to change the type from ExternalName to
    ClusterIP" and "... to NodePort": no cluster IP while ExternalName; once changed, a cluster
    IP is assigned and answers (and, for NodePort, a node's address on its nodePort)."""
    name, svc = services_cluster.name, "externalname-service"
    services_cluster.apply(echo_service(svc, "{type: ExternalName, externalName: example.com}"))
    try:
        got = json.loads(k8semu("--cluster", name, "get", "svc", svc, "-o", "json").stdout)["spec"]
        assert not got.get("clusterIP")
        services_cluster.apply(echo_service(svc, f"{{type: {target}, selector: {{app: echo}}, "
                                                 "ports: [{name: http, port: 80, targetPort: 80}]}"))
        services_cluster.synced()
        got = json.loads(k8semu("--cluster", name, "get", "svc", svc, "-o", "json").stdout)["spec"]
        assert got["clusterIP"] and "externalName" not in got
        assert reaches(services_cluster, got["clusterIP"], 80)
        if target == "NodePort":
            assert reaches(services_cluster, NODES["worker-1"], got["ports"][0]["nodePort"])
    finally:
        k8semu("--cluster", name, "delete", "svc", svc, check=False)


def test_should_be_able_to_change_the_type_from_clusterip_to_externalname(services_cluster: Cluster) -> None:
    """service.go [Conformance] "should be able to change the type from ClusterIP to
    ExternalName": the cluster IP is cleared and the name resolves, through the cluster DNS, as
    a CNAME to the external Service's FQDN and on to its address."""
    name, svc = services_cluster.name, "clusterip-service"
    services_cluster.apply(echo_service(svc, "{selector: {app: echo}, ports: [{port: 80, targetPort: 80}]}"))
    services_cluster.apply(echo_service("externalsvc", "{selector: {app: echo}, ports: [{port: 80, targetPort: 80}]}"))
    try:
        fqdn = "externalsvc.default.svc.cluster.local"
        services_cluster.apply(echo_service(svc, f"{{type: ExternalName, externalName: {fqdn}}}"))
        services_cluster.synced()
        got = json.loads(k8semu("--cluster", name, "get", "svc", svc, "-o", "json").stdout)["spec"]
        assert not got.get("clusterIP") and got["externalName"] == fqdn
        answer = services_cluster.exec("client", "dig", "+short", f"{svc}.default.svc.cluster.local").stdout.split()
        assert answer == [fqdn + ".", cluster_ip(services_cluster, "externalsvc")], answer
        assert reaches(services_cluster, f"{svc}.default.svc.cluster.local", 80)
    finally:
        k8semu("--cluster", name, "delete", "svc", svc, "externalsvc", check=False)


def affinity_service(cluster: Cluster, name: str, affinity: str, kind: str, timeout: int = 10) -> tuple[str, str]:
    """The Service as service.go's affinity tests make it (ClientIP with a ``timeout`` s
    timeout, 10 as upstream's, or None), applied again to switch it; returns the URL the exec pod
    calls and what a learned affinity flow for it matches (its destination, in ovs-ofctl's words)."""
    config = f", sessionAffinityConfig: {{clientIP: {{timeoutSeconds: {timeout}}}}}" if affinity == "ClientIP" else ""
    cluster.apply(f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
                  f"spec: {{type: {kind}, selector: {{app: web}}, sessionAffinity: {affinity}{config}, "
                  "ports: [{port: 80}]}\n")
    svc = json.loads(k8semu("--cluster", cluster.name, "get", "svc", name, "-o", "json").stdout)["spec"]
    cluster.synced()
    if kind == "NodePort":
        port = svc["ports"][0]["nodePort"]
        return f"http://{NODES['worker-2']}:{port}/", f"tp_dst={port} "
    return f"http://{svc['clusterIP']}/", f"nw_dst={svc['clusterIP']},"


def served_by(cluster: Cluster, url: str, n: int) -> list[str]:
    """The pod that answered each of ``n`` sequential requests from the client pod."""
    script = f'for i in $(seq {n}); do curl -s -m 2 {url} | grep -o "pod: [a-z0-9-]*"; done'
    return [line.split()[1] for line in cluster.exec("client", "sh", "-c", script, timeout=120).stdout.splitlines()]


@pytest.mark.parametrize("kind", ["ClusterIP", "NodePort"])
def test_should_be_able_to_switch_session_affinity_for_service(services_cluster: Cluster, kind: str) -> None:
    """service.go "should be able to switch session affinity for service with type clusterIP" /
    "... NodePort" [Conformance]: ClientIP affinity holds (15 requests, one pod), switched to None
    the requests spread again, switched back to ClientIP it holds again."""
    name = f"affinity-{kind.lower()}-transition"
    try:
        url, _ = affinity_service(services_cluster, name, "ClientIP", kind)
        assert len(set(served_by(services_cluster, url, 15))) == 1
        affinity_service(services_cluster, name, "None", kind)
        assert len(set(served_by(services_cluster, url, 15))) > 1
        affinity_service(services_cluster, name, "ClientIP", kind)
        assert len(set(served_by(services_cluster, url, 15))) == 1
    finally:
        k8semu("--cluster", services_cluster.name, "delete", "svc", name, check=False)


# in make slow (make test's 15-minute budget): its idle rounds are the slowest here; ClientIP
# affinity itself is in make test (tests/integration/test_services.py)
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ClusterIP", "NodePort"])
def test_should_have_session_affinity_timeout_work_for_service(services_cluster: Cluster, kind: str) -> None:
    """service.go "should have session affinity timeout work for service with type clusterIP" /
    "... NodePort": with a timeout the client sticks to one pod; once it has been idle past the
    timeout it may be given another, which some request of ten must show. Upstream sleeps
    timeout + 5 s between requests with a 10 s timeout; here the timeout is 4 s (the idle rounds
    cost 10 s each upstream) and each request waits until the data plane has forgotten the client
    (openflow: the learned affinity flow idled out; flannel, and a NodePort with kube-proxy beside
    the controller: kube-proxy's xt_recent entry is older than the timeout), which is the same condition."""
    name = f"affinity-{kind.lower()}-timeout"
    last = [0.0]  # when the client's last request ended

    # a pod calling a NodePort meets kube-proxy's rules where kube-proxy runs beside the switch
    if services_cluster.cni == "openflow" and not (kind == "NodePort" and services_cluster.kube_proxy):
        bridges = [services_cluster.bridge(n) for n in NODES]
        table = f"table={table_id('SessionAffinity')}"

        def remembered() -> bool:
            return any(learned in line for b in bridges for line in subprocess.run(
                ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", b, table], capture_output=True,
                text=True).stdout.splitlines())
    else:
        def remembered() -> bool:
            # kube-proxy's `-m recent --rcheck --seconds 4`: an xt_recent entry matches while the
            # client's last packet is younger than the timeout, so the entry idles out with time
            # (a quarter second more for the kernel's jiffies)
            return time.monotonic() - last[0] < 4.25

    def request(n: int) -> list[str]:
        answered = served_by(services_cluster, url, n)
        last[0] = time.monotonic()
        return answered
    try:
        url, learned = affinity_service(services_cluster, name, "ClientIP", kind, timeout=4)
        first = request(15)
        assert len(set(first)) == 1, first
        seen = set(first)
        for _ in range(10):
            poll(lambda: not remembered(), timeout=30, interval=0.5, what="the affinity entry idled out")
            seen |= set(request(1))
            if len(seen) > 1:
                break
        assert len(seen) > 1, "session is sticky after reaching the timeout"
    finally:
        k8semu("--cluster", services_cluster.name, "delete", "svc", name, check=False)
