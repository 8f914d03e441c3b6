"""The API layer's pure parts: patches, routing, selectors, column names, kubeconfig merging."""
from __future__ import annotations

import os

import pytest
import yaml

from emulator.api import kubeconfig, patch, pki, resources, server, tables
from emulator.api.handlers import Handlers, parse_fields
from emulator.api.openapi import group_version_document
from emulator.api.status import ApiError


def test_strategic_merge_merges_containers_by_name_and_replaces_primitive_lists():
    pod = {"spec": {"containers": [{"name": "a", "image": "x", "args": ["1", "2"]}, {"name": "b", "image": "y"}]}}
    out = patch.strategic_merge(pod, {"spec": {"containers": [{"name": "b", "image": "z", "args": ["3"]}]}})
    assert out["spec"]["containers"] == [{"name": "a", "image": "x", "args": ["1", "2"]},
                                         {"name": "b", "image": "z", "args": ["3"]}]
    assert pod["spec"]["containers"][1]["image"] == "y"  # the target is not modified


def test_strategic_merge_directives_and_null():
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}},
           "spec": {"ports": [{"port": 80}, {"port": 443}], "finalizers": ["x"]}}
    out = patch.strategic_merge(obj, {"metadata": {"labels": {"a": None}},
                                      "spec": {"ports": [{"port": 443, "$patch": "delete"}, {"port": 8080}],
                                               "finalizers": ["y"], "$setElementOrder/ports": [{"port": 80}]}})
    assert out == {"metadata": {"labels": {"b": "2"}},
                   "spec": {"ports": [{"port": 80}, {"port": 8080}], "finalizers": ["x", "y"]}}
    assert patch.strategic_merge(obj, {"spec": {"$patch": "replace", "ports": []}})["spec"] == {"ports": []}
    with pytest.raises(patch.PatchError):
        patch.strategic_merge(obj, {"spec": {"ports": [{"name": "no-key"}]}})


def test_merge_patch_rfc7386():
    assert patch.merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == \
        {"a": "z", "c": {"d": "e"}}
    assert patch.merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


def test_json_patch():
    assert patch.json_patch({"spec": {"replicas": 1}}, [{"op": "replace", "path": "/spec/replicas", "value": 3}]) == \
        {"spec": {"replicas": 3}}
    with pytest.raises(patch.PatchError):
        patch.json_patch({}, [{"op": "remove", "path": "/nope"}])


def test_routes():
    h = Handlers(backend=None)
    t = h.route("/api/v1/namespaces/demo/pods/web/log")
    assert (t.resource.kind, t.namespace, t.name, t.subresource) == ("Pod", "demo", "web", "log")
    assert h.route("/apis/apps/v1/deployments").resource.kind == "Deployment"
    assert h.route("/api/v1/namespaces/demo").resource.kind == "Namespace"
    assert h.route("/api/v1/namespaces/demo").name == "demo"
    assert h.route("/apis/networking.k8s.io/v1").discovery
    for bad in ("/api/v2/pods", "/apis/apps/v1/namespaces/x/nodes", "/apis/batch/v1/podtemplates", "/api"):
        with pytest.raises(ApiError) as err:
            h.route(bad)
        assert err.value.code == 404


def test_field_selectors():
    assert parse_fields("spec.nodeName=a,status.phase!=Running") == [
        ("spec.nodeName", True, "a"), ("status.phase", False, "Running")]
    with pytest.raises(ApiError) as err:
        parse_fields("spec.bogus=1")
    assert err.value.code == 400 and "field label not supported" in err.value.message


def test_column_names_and_table():
    assert [tables.column_name(h) for h in ("CLUSTER-IP", "PORT(S)", "NOMINATED NODE", "OS-IMAGE")] == \
        ["Cluster-IP", "Port(s)", "Nominated Node", "OS-Image"]
    ns = {"metadata": {"name": "demo", "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Active"}}
    table = tables.as_table("Namespace", [ns])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert table["rows"][0]["cells"][:2] == ["demo", "Active"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_openapi_patch_operation_lists_field_validation():
    """kubectl leaves validation to the server only when the PATCH operation lists it."""
    doc = group_version_document("apis/apps/v1")
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in [p["name"] for p in op["parameters"]]
    assert group_version_document("apis/autoscaling/v2") is None


def test_kubeconfig_merge_and_remove_keep_the_users_entries(tmp_path):
    path = tmp_path / "kube" / "config"
    path.parent.mkdir()
    mine = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
            "clusters": [{"name": "work", "cluster": {"server": "https://example.invalid"}}],
            "users": [{"name": "work", "user": {"token": "t"}}],
            "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}]}
    path.write_text(yaml.safe_dump(mine))
    os.chmod(path, 0o640)
    paths = pki.make(tmp_path, "lab", ["127.0.0.1"])
    ours = kubeconfig.admin_config("lab", "https://127.0.0.1:1234", paths)
    kubeconfig.merge(ours, path, os.getuid(), os.getgid())
    merged = yaml.safe_load(path.read_text())
    assert merged["current-context"] == "k8semu-lab"
    assert [c["name"] for c in merged["contexts"]] == ["work", "k8semu-lab"]
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    kubeconfig.merge(ours, path, os.getuid(), os.getgid())  # again: replaced, not duplicated
    assert len(yaml.safe_load(path.read_text())["clusters"]) == 2
    assert kubeconfig.remove("lab", path)
    after = yaml.safe_load(path.read_text())
    assert after["contexts"] == mine["contexts"] and after["current-context"] == ""
    assert not kubeconfig.remove("lab", path)
    assert not (tmp_path / "kube" / "config.lock").exists()


def test_kubeconfig_merge_makes_a_missing_kube_directory_as_kubectl_does(tmp_path):
    path = tmp_path / "home" / ".kube" / "config"  # a fresh machine: no ~/.kube yet
    (tmp_path / "home").mkdir()
    ours = kubeconfig.admin_config("lab", "https://127.0.0.1:1234", pki.make(tmp_path, "lab", ["127.0.0.1"]))
    kubeconfig.merge(ours, path, os.getuid(), os.getgid())
    assert yaml.safe_load(path.read_text())["current-context"] == "k8semu-lab"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert not path.with_name("config.lock").exists()


def test_kubeconfig_target_is_the_sudo_users(monkeypatch):
    path, uid, _ = kubeconfig.target({"SUDO_USER": "root", "HOME": "/nowhere"})
    assert str(path) == "/root/.kube/config" and uid == 0
    path, _, _ = kubeconfig.target({"KUBECONFIG": "/a/one:/b/two", "HOME": "/nowhere"})
    assert str(path) == "/a/one"


def test_client_certificate_names_user_and_groups():
    peer = {"subject": ((("organizationName", "system:masters"),), (("commonName", "kubernetes-admin"),))}
    assert pki.user_of(peer) == ("kubernetes-admin", ["system:masters"])
    assert pki.user_of(None) is None and pki.user_of({}) is None


def _pb(number: int, value) -> bytes:
    """One protobuf field (what client-go writes): varint for ints, length-delimited otherwise."""
    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def test_protobuf_deployment_as_kubectl_sends_it():
    from emulator.api import protobuf
    meta = _pb(1, "web") + _pb(2, "") + _pb(11, _pb(1, "app") + _pb(2, "web")) + _pb(8, b"")
    container = _pb(1, "nginx") + _pb(2, "nginx") + _pb(6, _pb(3, 80) + _pb(4, "TCP")) + _pb(8, b"") + _pb(13, "")
    template = _pb(1, _pb(11, _pb(1, "app") + _pb(2, "web"))) + _pb(2, _pb(2, container) + _pb(9, ""))
    spec = _pb(1, 0) + _pb(2, _pb(1, _pb(1, "app") + _pb(2, "web"))) + _pb(3, template) + _pb(4, b"")
    raw = _pb(1, meta) + _pb(2, spec) + _pb(3, b"")
    body = protobuf.MAGIC + _pb(1, _pb(1, "apps/v1") + _pb(2, "Deployment")) + _pb(2, raw)
    assert protobuf.read_object(body) == {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                       "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}}


def test_protobuf_job_as_kubectl_create_job_sends_it():
    from emulator.api import protobuf
    container = _pb(1, "hello") + _pb(2, "busybox") + _pb(3, "echo") + _pb(3, "hi") + _pb(8, b"")
    template = _pb(1, b"") + _pb(2, _pb(2, container) + _pb(3, "Never"))
    raw = _pb(1, _pb(1, "hello")) + _pb(2, _pb(6, template)) + _pb(3, b"")
    body = protobuf.MAGIC + _pb(1, _pb(1, "batch/v1") + _pb(2, "Job")) + _pb(2, raw)
    assert protobuf.read_object(body) == {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello"},
        "spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox", "command": ["echo", "hi"]}],
                                       "restartPolicy": "Never"}}}}


def test_protobuf_refuses_what_it_cannot_read():
    from emulator.api import protobuf
    with pytest.raises(protobuf.ProtobufError, match="magic"):
        protobuf.read_object(b"{}")
    sts = protobuf.MAGIC + _pb(1, _pb(1, "apps/v1") + _pb(2, "StatefulSet")) + _pb(2, b"")
    with pytest.raises(protobuf.ProtobufError, match="StatefulSet is not read"):
        protobuf.read_object(sts)
    odd = protobuf.MAGIC + _pb(1, _pb(1, "v1") + _pb(2, "Namespace")) + _pb(2, _pb(1, _pb(15, "x")))
    with pytest.raises(protobuf.ProtobufError, match="field 15 of ObjectMeta"):
        protobuf.read_object(odd)
    with pytest.raises(protobuf.ProtobufError):
        protobuf.read_object(protobuf.MAGIC + b"\x0a\xff")


def test_service_account_tokens():
    from emulator.model import satoken
    key = b"k" * 32
    token = satoken.issue(key, "demo", "default", "sa-1", "web", "uid-1", now=1000)
    assert satoken.binding(token) == ("demo", "default", "sa-1", "web", "uid-1")
    assert satoken.verify(key, token, now=1001) == ("system:serviceaccount:demo:default",
                                                    ["system:serviceaccounts", "system:serviceaccounts:demo",
                                                     "system:authenticated"])
    assert satoken.verify(b"x" * 32, token, now=1001) is None  # another cluster's key
    head, claims, sig = token.split(".")
    assert satoken.verify(key, f"{head}.{claims}x.{sig}", now=1001) is None  # tampered
    assert satoken.verify(key, token, now=1000 + satoken.LIFETIME) is None  # expired
    assert satoken.verify(key, "not a token") is None


def test_aggregated_discovery_is_offered_as_client_go_asks_for_it():
    asked = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    assert server._aggregated_version(asked) == "apidiscovery.k8s.io/v2"
    assert server._aggregated_version("application/json;as=APIGroupDiscoveryList;v=v2beta1;g=apidiscovery.k8s.io") \
        == "apidiscovery.k8s.io/v2beta1"
    assert server._aggregated_version("application/json") == ""
    assert server._aggregated_version("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;"
                                      "as=APIGroupDiscoveryList,application/json") == ""


def test_aggregated_discovery_lists_what_the_per_version_documents_list():
    core = resources.aggregated_discovery(True, "apidiscovery.k8s.io/v2", "openflow")
    groups = resources.aggregated_discovery(False, "apidiscovery.k8s.io/v2", "openflow")
    assert [g["metadata"] for g in core["items"]] == [{}]
    assert [g["metadata"]["name"] for g in groups["items"]] == [g for g in resources.groups("openflow") if g]
    h = Handlers(backend=None)
    for doc in (core, groups):
        for item in doc["items"]:
            group = item["metadata"].get("name", "")
            for version in item["versions"]:
                legacy = h.discovery(h.route(f"/apis/{group}/{version['version']}" if group else "/api/v1"))
                flat = {}
                for r in version["resources"]:
                    flat[r["resource"]] = (r["responseKind"]["kind"], r["scope"] == "Namespaced", r["verbs"])
                    for sub in r.get("subresources", []):
                        flat[f"{r['resource']}/{sub['subresource']}"] = (sub["responseKind"]["kind"], True, sub["verbs"])
                assert flat == {r["name"]: (r["kind"], r["namespaced"], r["verbs"]) for r in legacy["resources"]}
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["singularResource"] == "pod" and pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    eviction = next(s for s in pods["subresources"] if s["subresource"] == "eviction")
    assert eviction["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
