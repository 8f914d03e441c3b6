"""The one client (emulator/client) against the real API server with a recording backend: every
k8semu endpoint reaches its manager request, errors come back as the manager raised them
(class, text, located problems), and the endpoint registry refuses what it does not serve."""
from __future__ import annotations

import http.client
import os
import socket
import ssl
import sys
from pathlib import Path

import pytest
import yaml

from emulator.api import kubeconfig, ops, pki
from emulator.api.server import ApiServer
from emulator.client import Client
from emulator.client.targets import node_env
from emulator.errors import K8semuError, NoClusterError, NotFoundError, Problem, RuntimeFailure, SpecError
from emulator.cluster import rbac
from emulator.model import rbacdefaults, satoken
from emulator.spec.loader import Document, load_text

SA_KEY = b"k" * 32
GOOD = """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


class Recorder:
    """A Backend that records each request and answers from ``answers`` (an exception is raised)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.answers: dict[str, object] = {}

    def _answer(self, name: str, *args, default=None):
        self.calls.append((name, *args))
        answer = self.answers.get(name, default)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def status_report(self):
        return self._answer("status_report", default={"synced": True})

    def generation_report(self):
        return self._answer("generation_report", default={"published": 3, "switches": {"n1": 3}})

    def objects(self, kind, namespace=None):
        return self._answer("objects", kind, namespace, default=[])

    def event_records(self, namespace=None):
        return self._answer("event_records", namespace, default=[])

    def policy(self):  # a fresh cluster's RBAC objects: nothing bound to ServiceAccounts
        return rbac.policy_from(rbacdefaults.cluster_roles(), [], rbacdefaults.cluster_role_bindings(), [])

    def role_rules(self, kind, namespace, name):
        return None

    def service_account_uid(self, namespace, account):
        return "" if (namespace, account) == ("default", "gone") else f"sa-{account}"

    def token_holders_exist(self, namespace, account, account_uid, pod, pod_uid):
        return account_uid == self.service_account_uid(namespace, account) != ""

    def pod_info(self, name, namespace=None):
        return self._answer("pod_info", name, namespace, default={"name": name})

    def apply(self, objects):
        return self._answer("apply", [(type(o).__name__, o.meta.namespace, o.meta.name) for o in objects],
                            default=["service/web created"])

    def create(self, objects):
        return self._answer("create", objects, default=[])

    def delete(self, kind, namespace, name):
        return self._answer("delete", kind, namespace, name, default="")

    def scale(self, kind, namespace, name, replicas):
        return self._answer("scale", kind, namespace, name, replicas, default="")

    def cordon(self, node, unschedulable):
        return self._answer("cordon", node, unschedulable, default=f"node/{node} cordoned")

    def drain(self, node, force, pod_selector="", ignore_daemonsets=False):
        return self._answer("drain", node, force, pod_selector, ignore_daemonsets,
                            default={"lines": [f"node/{node} cordoned"], "evicted": [], "refused": []})

    def controller_stop(self):
        return self._answer("controller_stop", default="stopped")

    def controller_start(self):
        return self._answer("controller_start", default="started")

    def down(self):
        return self._answer("down", default="stopping")

    def network_plugin(self):
        return "openflow"

    def ipam_report(self):
        return self._answer("ipam_report", default={"pools": [], "blocks": [], "borrowed": []})

    def impair(self, link, namespace, values):
        return self._answer("impair", link, namespace, values, default=f"{link} impaired")

    def partition(self, name, a, b, one_way):
        return self._answer("partition", name, a, b, one_way, default=f"partition/{name} created")

    def heal(self, what, namespace="default"):
        return self._answer("heal", what, namespace, default=[f"{what} healed"])

    def impairments(self):
        return self._answer("impairments", default={"links": [], "partitions": []})

    def node_power(self, name, stop):
        return self._answer("node_power", name, stop, default=f"node/{name} {'stopped' if stop else 'started'}")

    def component_fault(self, action, component, node=""):
        return self._answer("component_fault", action, component, node, default=f"{component} {action}")

    def component_faults(self):
        return self._answer("component_faults", default=[{"target": "coredns", "stopped": "frozen"}])

    def counters(self):
        return self._answer("counters", default={"tables": {"n1": {"Classifier": 7}}})

    def trace(self, source, destination, namespace="default", protocol="", port=None, endpoint="", live=False):
        return self._answer("trace", source, destination, namespace, protocol, port, endpoint, live,
                            default={"verdict": "delivered", "hops": []})


@pytest.fixture
def served(tmp_path):
    """(client, backend): an API server on a free loopback port, its kubeconfig in a run directory."""
    (tmp_path / "pki").mkdir()
    paths = pki.make(tmp_path / "pki", "unit", ["127.0.0.1"])
    backend = Recorder()
    server = ApiServer(backend, paths, "v1.37.0", SA_KEY)
    port = server.start()
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(
        kubeconfig.admin_config("unit", f"https://127.0.0.1:{port}", paths)))
    client = Client(tmp_path, timeout=10)
    yield client, backend
    client.close()
    server.stop()


def test_every_endpoint_reaches_its_manager_request(served):
    client, backend = served
    assert client.status() == {"synced": True}
    assert client.generations() == {"published": 3, "switches": {"n1": 3}}
    assert client.pod("web-1", "default") == {"name": "web-1"}
    assert client.pod("web-1") == {"name": "web-1"}
    assert client.drain("n1", force=True, pod_selector="app=web") == ["node/n1 cordoned", "node/n1 drained"]
    assert client.controller_stop() == "stopped" and client.controller_start() == "started"
    assert client.down() == "stopping"
    assert client.ipam() == {"pools": [], "blocks": [], "borrowed": []}
    assert client.impair("node/n1", {"bandwidth": "50Mbit"}) == "node/n1 impaired"
    assert client.partition("split", ["n1"], ["n2"], True) == "partition/split created"
    assert client.heal("partition/split") == ["partition/split healed"]
    assert client.impairments() == {"links": [], "partitions": []}
    assert client.node_stop("n1") == "node/n1 stopped" and client.node_start("n1") == "node/n1 started"
    assert client.trace("client", "svc/web", "shop", "udp", 53, "10.0.0.1:53", live=True)["verdict"] == "delivered"
    assert client.trace("client", "web")["hops"] == []
    assert client.counters() == {"tables": {"n1": {"Classifier": 7}}}
    assert client.fault("stop", "kube-proxy", "n1") == "kube-proxy stop"
    assert client.component_faults() == [{"target": "coredns", "stopped": "frozen"}]
    assert [c for c in backend.calls] == [
        ("status_report",), ("generation_report",), ("pod_info", "web-1", "default"), ("pod_info", "web-1", None),
        ("drain", "n1", True, "app=web", False), ("controller_stop",), ("controller_start",),
        ("down",), ("ipam_report",), ("impair", "node/n1", "default", {"bandwidth": "50Mbit"}),
        ("partition", "split", ["n1"], ["n2"], True), ("heal", "partition/split", "default"), ("impairments",),
        ("node_power", "n1", True), ("node_power", "n1", False),
        ("trace", "client", "svc/web", "shop", "udp", 53, "10.0.0.1:53", True),
        ("trace", "client", "web", "default", "", None, "", False), ("counters",),
        ("component_fault", "stop", "kube-proxy", "n1"), ("component_faults",)]
    assert set(ops.OPS) == {"status", "generations", "pod", "apply", "drain", "controller/stop",
                            "controller/start", "down", "ipam", "impair", "partition", "heal",
                            "impairments", "node/stop", "node/start", "trace", "counters",
                            "fault", "faults"}  # each one called above (apply below)


def test_a_collections_version_is_read_without_its_objects(served):
    """What the UI's poller asks four times a second: the list's resourceVersion, no object."""
    client, _ = served
    answer = client.request("GET", "/api/v1/pods", query={"fieldSelector": "metadata.name=-"})
    assert answer["items"] == [] and client.collection_version("Pod") == answer["metadata"]["resourceVersion"]


def test_apply_sends_located_documents_and_their_errors_point_into_the_file(served):
    client, backend = served
    done = client.apply(load_text(GOOD, "web.yaml"), "demo")
    assert done.lines == ["service/web created"] and done.warnings == []
    assert backend.calls[-1] == ("apply", [("Service", "demo", "web")])
    bad = GOOD.replace("port: 80", "port: 80, bogus: 1")
    with pytest.raises(SpecError) as raised:
        client.apply(load_text(bad, "web.yaml"))
    local = str(SpecError([Problem(load_text(bad, "web.yaml")[0].where(("spec", "ports", 0, "bogus")),
                                   "spec.ports[0].bogus", "unknown field 'bogus'")]))
    assert str(raised.value) == local and "web.yaml:7:" in local  # the line and caret of the user's file
    # an error the manager raises while applying keeps its located problems too
    where = load_text(GOOD, "web.yaml")[0].where(("metadata", "name"))
    backend.answers["apply"] = SpecError([Problem(where, "metadata.namespace", "namespaces 'demo' not found")])
    with pytest.raises(SpecError) as raised:
        client.apply(load_text(GOOD, "web.yaml"), "demo")
    assert raised.value.problems[0].where == where and raised.value.exit_code == SpecError.exit_code


def test_a_document_from_inside_another_keeps_its_positions():
    outer = load_text("steps:\n- apply:\n    apiVersion: v1\n    kind: Namespace\n    metadata: {name: x}\n", "s.yaml")[0]
    inner = outer.sub(("steps", 0, "apply"))
    back = Document.from_wire(inner.to_wire())
    assert back.data == inner.data and back.where(("metadata", "name")) == inner.where(("metadata", "name"))
    for bad in (None, {"file": "f"}, {"data": {}, "file": 3}, {"data": {}, "file": "f", "marks": [[["a"], [1, 2]]]},
                {"data": {}, "file": "f", "lines": {"x": "y"}}):
        with pytest.raises(ValueError):
            Document.from_wire(bad)


def test_errors_come_back_as_the_manager_raised_them(served):
    client, backend = served
    backend.answers["pod_info"] = NotFoundError('pods "x" not found')
    with pytest.raises(NotFoundError, match='pods "x" not found'):
        client.pod("x")
    backend.answers["controller_start"] = RuntimeFailure("switches did not connect")
    with pytest.raises(RuntimeFailure, match="switches did not connect"):
        client.controller_start()


def test_the_registry_refuses_what_it_does_not_serve(served):
    client, backend = served
    with pytest.raises(K8semuError, match="k8semu has no endpoint 'nope'"):
        client.request("GET", ops.PREFIX + "nope")
    with pytest.raises(K8semuError, match="takes POST"):
        client.request("GET", ops.PREFIX + "down")
    assert _raw_post(client, b"{")["message"].startswith("the body of the request is not JSON")
    with pytest.raises(K8semuError, match="must be a JSON object"):
        client.request("POST", ops.PREFIX + "drain", [1])
    with pytest.raises(K8semuError, match="node: a string is required"):
        client.request("POST", ops.PREFIX + "drain", {"node": 5})
    with pytest.raises(K8semuError, match="force: true or false"):
        client.request("POST", ops.PREFIX + "drain", {"node": "n1", "force": "yes please"})
    with pytest.raises(K8semuError, match="documents: a mark is"):
        client.request("POST", ops.PREFIX + "apply", {"documents": [{"data": {}, "file": "f", "marks": [1]}]})
    with pytest.raises(K8semuError, match="unknown component 'etcd'"):
        client.fault("stop", "etcd")
    assert not [c for c in backend.calls if c[0] == "component_fault"]  # refused before the manager is asked


def _raw_post(client: Client, body: bytes) -> dict:
    """The Status a body that is not JSON gets (the client only sends JSON)."""
    conn = client._connect()
    try:
        conn.request("POST", ops.PREFIX + "drain", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 400
        return yaml.safe_load(response.read())
    finally:
        conn.close()


def test_delete_options_the_api_server_refuses(served):
    client, _ = served
    path = "/api/v1/namespaces/default/pods/x"
    with pytest.raises(SpecError, match='Unsupported value: "Sideways"'):
        client.request("DELETE", path, {"kind": "DeleteOptions", "propagationPolicy": "Sideways"})
    with pytest.raises(K8semuError, match="gracePeriodSeconds: not an integer"):
        client.request("DELETE", path, {"gracePeriodSeconds": "soon"})
    with pytest.raises(NotFoundError):  # valid options: then the pod is looked for
        client.request("DELETE", path, {"gracePeriodSeconds": 0, "propagationPolicy": "Orphan"})


def test_a_connection_the_server_closed_is_opened_again(served):
    client, backend = served
    client.status()
    first = client._local.conn
    first.sock.shutdown(socket.SHUT_RD)  # as when the server ends an idle keep-alive
    assert client.status() == {"synced": True} and client._local.conn is not first
    assert [c for c in backend.calls] == [("status_report",), ("status_report",)]


def test_a_pods_token_may_not_use_the_emulators_endpoints(served):
    """A ServiceAccount token (what every pod holds) reads discovery but, with no RoleBinding, no
    pods (RBAC's 403), and gets 403 from k8semu's own endpoints: a pod cannot take the cluster
    down or stop its controller."""
    client, backend = served
    token = satoken.issue(SA_KEY, "default", "default", "sa-default", "web", "uid-1")
    tls = ssl.create_default_context(cafile=str(pki.Paths(client.run / "pki").ca))
    client.status()  # the admin's request: the client has read the server's address
    host, port = client._address
    for method, path, code in (("GET", "/api", 200), ("GET", "/api/v1/pods", 403), ("POST", ops.PREFIX + "down", 403),
                               ("GET", ops.PREFIX + "status", 403), ("POST", ops.PREFIX + "controller/stop", 403)):
        conn = http.client.HTTPSConnection(host, port, context=tls, timeout=10)
        try:
            conn.request(method, path, b"{}" if method == "POST" else None, {"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            body = yaml.safe_load(response.read())
        finally:
            conn.close()
        assert response.status == code, (path, body)
        if code == 403:
            assert body["reason"] == "Forbidden" and "system:serviceaccount:default:default" in body["message"]
    assert "down" not in [c[0] for c in backend.calls] and "controller_stop" not in [c[0] for c in backend.calls]


def test_a_token_whose_service_account_is_gone_is_unauthorized(served):
    """kube-apiserver accepts a ServiceAccount token only while its ServiceAccount (and the pod it
    is bound to) exists, the same one by uid: signed and unexpired is not enough, and a
    ServiceAccount made again under the name does not inherit its predecessor's tokens."""
    client, _ = served
    tls = ssl.create_default_context(cafile=str(pki.Paths(client.run / "pki").ca))
    client.status()
    host, port = client._address
    answers = []
    for account, uid in (("web", "sa-web"), ("gone", "sa-gone"), ("web", "sa-web-before")):
        token = satoken.issue(SA_KEY, "default", account, uid, "", "")
        conn = http.client.HTTPSConnection(host, port, context=tls, timeout=10)
        try:
            conn.request("GET", "/api", None, {"Authorization": f"Bearer {token}"})
            answers.append(conn.getresponse().status)
        finally:
            conn.close()
    assert answers == [200, 401, 401]


def test_no_cluster_is_said_plainly(tmp_path):
    with pytest.raises(NoClusterError, match="no cluster is running"):
        Client(tmp_path).status()


def test_commands_on_a_control_plane_node_find_the_api_as_kubeadms_admin_conf_names_it(tmp_path):
    assert node_env(tmp_path) is None  # no API yet: the caller's environment
    (tmp_path / "admin.conf").write_text("{}")
    env = node_env(tmp_path)
    assert env["KUBECONFIG"] == str(tmp_path / "admin.conf") and env["KUBECACHEDIR"].startswith(str(tmp_path))
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)  # where kubectl is
