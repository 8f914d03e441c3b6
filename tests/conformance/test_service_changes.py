"""kubernetes/kubernetes test/e2e/network/service.go, the tests about Services changing under
their clients (ports added and removed, Services created and deleted, node ports released) and
internalTrafficPolicy=Local; each test is named after the e2e test it follows
(docs/conformance.md maps them)."""
from __future__ import annotations

import json

import pytest

from tests.cluster import SERVICES_PLANES, Cluster, k8semu, module_cluster, poll

OTHER_PLANES = SERVICES_PLANES  # make slow (the budget)
changes_cluster = module_cluster("topologies/services.yaml", *OTHER_PLANES, slow=OTHER_PLANES)

OUTSIDE = "outside"
WORKER_2 = "172.18.0.4"


def svc(cluster: Cluster, name: str) -> dict:
    return json.loads(k8semu("--cluster", cluster.name, "get", "svc", name, "-o", "json").stdout)


def answer(cluster: Cluster, source: str, url: str) -> str:
    """The pod that answered (the echo image's "pod" field), or "" when nothing did."""
    done = cluster.curl(source, url, timeout=2)
    return json.loads(done.stdout)["pod"] if done.returncode == 0 and done.stdout.startswith("{") else ""


def delete(cluster: Cluster, *objects: str) -> None:
    for obj in objects:
        k8semu("--cluster", cluster.name, "delete", *obj.split("/"), check=False)


def test_should_be_updated_after_adding_or_deleting_ports(changes_cluster: Cluster) -> None:
    """service.go "should be updated after adding or deleting ports": a Service of one port
    gains a second (both serve), then loses the first (only the second serves)."""
    c = changes_cluster
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: multiport, labels: {app: multiport}}\nspec:\n"
           "  containers:\n"
           "    - {name: one, image: k8semu/echo, env: [{name: PORT, value: '8080'}], ports: [{containerPort: 8080}]}\n"
           "    - {name: two, image: k8semu/echo, env: [{name: PORT, value: '8081'}], ports: [{containerPort: 8081}]}\n")

    def service(ports: str) -> str:
        return ("apiVersion: v1\nkind: Service\nmetadata: {name: multiport}\n"
                f"spec: {{selector: {{app: multiport}}, ports: [{ports}]}}\n")
    one = "{name: portname1, port: 80, targetPort: 8080}"
    two = "{name: portname2, port: 81, targetPort: 8081}"
    try:
        c.apply(pod)
        c.apply(service(one))
        c.wait_running("default")
        c.synced()
        ip = svc(c, "multiport")["spec"]["clusterIP"]
        assert poll(lambda: answer(c, "client", f"http://{ip}:80/"), what="port 80") == "multiport"
        c.apply(service(f"{one}, {two}"))
        c.synced()
        assert answer(c, "client", f"http://{ip}:80/") == "multiport"
        assert answer(c, "client", f"http://{ip}:81/") == "multiport"
        c.apply(service(two))
        c.synced()
        assert answer(c, "client", f"http://{ip}:81/") == "multiport"
        assert answer(c, "client", f"http://{ip}:80/") == ""
    finally:
        delete(c, "svc/multiport", "pod/multiport")


def test_should_be_able_to_up_and_down_services(changes_cluster: Cluster) -> None:
    """service.go "should be able to up and down services": two Services serve; one is
    deleted and stops answering while the other still serves; a third, created after, serves
    beside it at a new address."""
    c = changes_cluster

    def up(name: str) -> str:
        c.apply(f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
                "spec: {selector: {app: web}, ports: [{port: 80}]}\n")
        c.synced()
        return svc(c, name)["spec"]["clusterIP"]
    try:
        first, second = up("up-down-1"), up("up-down-2")
        for ip in (first, second):
            poll(lambda ip=ip: c.curl("client", f"http://{ip}/", timeout=2).returncode == 0, what=f"{ip} serving")
        delete(c, "svc/up-down-1")
        c.synced()
        assert c.curl("client", f"http://{first}/", timeout=2).returncode != 0
        assert c.curl("client", f"http://{second}/", timeout=2).returncode == 0
        third = up("up-down-3")
        assert third not in (first, second)
        assert c.curl("client", f"http://{third}/", timeout=2).returncode == 0
        assert c.curl("client", f"http://{second}/", timeout=2).returncode == 0
    finally:
        delete(c, "svc/up-down-1", "svc/up-down-2", "svc/up-down-3")


def test_should_release_nodeports_on_delete(changes_cluster: Cluster) -> None:
    """service.go "should release NodePorts on delete": the node port a deleted Service had
    can be given to a new Service at once, and serves it from outside."""
    c = changes_cluster

    def nodeport(port: str = "") -> dict:
        extra = f", nodePort: {port}" if port else ""
        c.apply("apiVersion: v1\nkind: Service\nmetadata: {name: nodeport-reuse}\n"
                f"spec: {{type: NodePort, selector: {{app: web}}, ports: [{{port: 80{extra}}}]}}\n")
        c.synced()
        return svc(c, "nodeport-reuse")
    try:
        port = str(nodeport()["spec"]["ports"][0]["nodePort"])
        delete(c, "svc/nodeport-reuse")
        assert str(nodeport(port)["spec"]["ports"][0]["nodePort"]) == port
        assert c.curl(OUTSIDE, f"http://{WORKER_2}:{port}/", timeout=2).returncode == 0
    finally:
        delete(c, "svc/nodeport-reuse")


# the hostNetwork client in make slow (make test's budget): the pod client runs the same rules
@pytest.mark.parametrize("client", ["pod", pytest.param("hostNetwork", marks=pytest.mark.slow)])
def test_should_respect_internal_traffic_policy_local(changes_cluster: Cluster, client: str) -> None:
    """service.go "should respect internalTrafficPolicy=Local Pod to Pod" and "... Pod
    (hostNetwork: true) to Pod": with the only endpoint on worker-1, a client on worker-1
    reaches the Service and a client on worker-2 does not (no local endpoint: dropped)."""
    c = changes_cluster
    host = "hostNetwork: true, " if client == "hostNetwork" else ""
    names = {node: f"itp-{client.lower()}-{node}" for node in ("worker-1", "worker-2")}
    try:
        c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: itp-server, labels: {app: itp-server}}\n"
                "spec: {nodeName: worker-1, containers: [{name: echo, image: k8semu/echo}]}\n---\n"
                "apiVersion: v1\nkind: Service\nmetadata: {name: itp-local}\n"
                "spec: {selector: {app: itp-server}, internalTrafficPolicy: Local, ports: [{port: 80}]}\n")
        for node, name in names.items():
            c.apply(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n"
                    f"spec: {{{host}nodeName: {node}, containers: [{{name: c, image: busybox}}]}}\n")
        c.wait_running("default")
        c.synced()
        ip = svc(c, "itp-local")["spec"]["clusterIP"]
        assert poll(lambda: answer(c, names["worker-1"], f"http://{ip}/"), what="the local client served") == "itp-server"
        assert answer(c, names["worker-2"], f"http://{ip}/") == ""
    finally:
        delete(c, "svc/itp-local", "pod/itp-server", *(f"pod/{n}" for n in names.values()))
