"""ConfigMaps as the API server checks and stores them (pkg/apis/core/validation
ValidateConfigMap): keys, data/binaryData overlap, the 1 MiB limit, immutability; and the row
``kubectl get configmaps`` prints."""
from __future__ import annotations

import pytest
import yaml

from emulator.api import protobuf, tables
from emulator.cluster import controllers, render
from emulator.errors import SpecError
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_object
from tests.unit.test_controllers import default_state


def parse(text: str):
    return parse_object(load_text(text, "cm.yaml")[0])


def cm(data: str = "{greeting: hello}", extra: str = "") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web}}\ndata: {data}\n{extra}"


def test_keys_overlap_and_size_are_checked_as_the_api_server_checks_them():
    (obj,), problems, warnings = parse(cm(extra="binaryData: {logo: aGk=}\n"))
    assert not problems and not warnings and obj.data == {"greeting": "hello"} and obj.binary_data == {"logo": "aGk="}
    _, problems, _ = parse(cm("{greeting: x, 'bad key': x, '..x': y}", "binaryData: {greeting: aGk=, z: '!!'}\n"))
    text = "\n".join(str(p) for p in problems)
    assert "a valid config key must consist of alphanumeric characters" in text
    assert "must not start with '..'" in text
    assert "duplicate of key present in data" in text and "illegal base64 data" in text
    _, problems, _ = parse(cm("{big: " + "x" * (1024 * 1024 + 1) + "}"))
    assert "Too long: must have at most 1048576 bytes" in str(problems[0])


def test_an_immutable_configmap_keeps_its_data():
    state = default_state()
    (first,), _, _ = parse(cm(extra="immutable: true\n"))
    controllers.apply(state, [first])
    (changed,), _, _ = parse(cm("{greeting: bye}", "immutable: true\n"))
    with pytest.raises(SpecError, match="field is immutable when `immutable` is set"):
        controllers.apply(state, [changed])
    (relabelled,), _, _ = parse(cm(extra="immutable: true\n").replace("{name: web}", "{name: web, labels: {a: b}}"))
    assert controllers.apply(state, [relabelled]) == ["configmap/web configured"]  # metadata may change
    shown = render.objects(state, "ConfigMap", "default")
    assert [(o["metadata"]["name"], o["data"], o["immutable"]) for o in shown] == [("web", {"greeting": "hello"}, True)]
    assert tables.as_table("ConfigMap", shown, "None")["rows"][0]["cells"][:2] == ["web", "1"]


def test_kubectl_create_configmap_sends_protobuf_this_api_reads():
    meta = b"\x0a\x03web"  # ObjectMeta.name
    entry = b"\x0a\x01a\x12\x01b"  # map entry: key a, value b
    cm_bytes = b"\x0a" + bytes([len(meta)]) + meta + b"\x12" + bytes([len(entry)]) + entry
    type_meta = b"\x0a\x02v1\x12\x09ConfigMap"
    unknown = b"\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12" + bytes([len(cm_bytes)]) + cm_bytes
    assert protobuf.read_object(protobuf.MAGIC + unknown) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"a": "b"}}


def test_every_namespace_has_its_default_service_account_and_the_root_ca_as_kube_controller_manager_keeps_them():
    state = default_state()
    state.root_ca = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
    (team,), _, _ = parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")
    controllers.apply(state, [team])
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "team"):
        assert state.get("ServiceAccount", ns, "default") is not None, ns
        assert state.get("ConfigMap", ns, "kube-root-ca.crt").obj.data == {"ca.crt": state.root_ca}, ns
    controllers.delete(state, "ServiceAccount", "team", "default")
    assert state.get("ServiceAccount", "team", "default") is not None  # put back, as the controller does
    (edited,), _, _ = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-root-ca.crt, namespace: team}\n"
                            "data: {ca.crt: mine}\n")
    controllers.apply(state, [edited])
    assert state.get("ConfigMap", "team", "kube-root-ca.crt").obj.data == {"ca.crt": state.root_ca}
    controllers.delete(state, "Namespace", "", "team")
    assert not [key for key in state.records if key[1] == "team"]  # nothing of it is left or made again
    shown = render.objects(state, "ServiceAccount", "default")
    assert [o["metadata"]["name"] for o in shown] == ["default"]
    assert tables.as_table("ServiceAccount", shown, "None")["rows"][0]["cells"][:2] == ["default", "0"]


def test_a_service_account_may_only_say_whether_tokens_are_mounted():
    (sa,), problems, _ = parse("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot}\n"
                               "automountServiceAccountToken: false\n")
    assert not problems and sa.automount is False
    _, problems, _ = parse("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot}\n"
                           "automountServiceAccountToken: maybe\n")
    assert "expected true or false" in str(problems[0])


def test_kube_system_has_kubeadms_cluster_configuration():
    state = default_state()
    cm = state.get("ConfigMap", "kube-system", "kubeadm-config").obj
    config = yaml.safe_load(cm.data["ClusterConfiguration"])
    assert config["kind"] == "ClusterConfiguration" and config["kubernetesVersion"] == "v1.29.0"
    assert config["networking"] == {"dnsDomain": "cluster.local", "podSubnet": state.config.pods.subnet,
                                    "serviceSubnet": state.config.services.subnet}
