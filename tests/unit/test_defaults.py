"""The API server's defaults on pod specs: what is stored, and what reads back and writes again."""
from __future__ import annotations

import yaml

from emulator.model import defaults
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
        env: [{name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
        readinessProbe: {httpGet: {port: 80}}
        resources: {limits: {cpu: 100m}}
        volumeMounts: [{name: conf, mountPath: /etc/conf}, {name: scratch, mountPath: /scratch}]
      volumes:
      - {name: conf, configMap: {name: web-conf}}
      - {name: scratch}
"""


def _parse(text: str):
    manifests = parse_documents(load_text(text, "test.yaml"))
    return manifests.objects[0], manifests.warnings


def test_pod_spec_defaults_are_the_api_servers():
    dep, _ = _parse(DEPLOYMENT)
    spec = dep.template.spec.raw
    assert (spec["dnsPolicy"], spec["restartPolicy"], spec["schedulerName"]) == \
        ("ClusterFirst", "Always", "default-scheduler")
    assert (spec["terminationGracePeriodSeconds"], spec["securityContext"]) == (30, {})
    assert "enableServiceLinks" not in spec  # SetDefaults_Pod's, not a template's
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "Always"  # no tag means :latest
    assert (container["terminationMessagePath"], container["terminationMessagePolicy"]) == \
        ("/dev/termination-log", "File")
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["readinessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                           "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert container["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "status.podIP", "apiVersion": "v1"}
    assert spec["volumes"] == [{"name": "conf", "configMap": {"name": "web-conf", "defaultMode": 420}},
                               {"name": "scratch", "emptyDir": {}}]
    assert dep.template.raw["spec"] == spec  # the pod-template-hash is taken over the defaulted template


def test_pod_level_defaults():
    dep, _ = _parse(DEPLOYMENT)
    pod = defaults.pod_defaults(dep.template.spec.raw)
    assert pod["enableServiceLinks"] is True
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "100m"}, "requests": {"cpu": "100m"}}
    host = defaults.pod_defaults({"hostNetwork": True, "containers": [{"ports": [{"containerPort": 53}]}]})
    assert host["containers"][0]["ports"] == [{"containerPort": 53, "hostPort": 53}]


def test_image_pull_policy_follows_the_tag():
    assert [defaults.image_pull_policy(i) for i in ("nginx", "nginx:latest", "nginx:1.27", "reg:5000/nginx",
                                                    "nginx@sha256:ab", "reg:5000/a/b:v1")] == \
        ["Always", "Always", "IfNotPresent", "Always", "IfNotPresent", "IfNotPresent"]


def test_given_values_are_kept():
    spec = defaults.pod_spec({"dnsPolicy": "Default", "containers": [
        {"name": "a", "image": "x:1", "imagePullPolicy": "Never", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]})
    assert spec["dnsPolicy"] == "Default"
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
    assert spec["containers"][0]["ports"][0]["protocol"] == "UDP"


def test_a_defaulted_object_written_back_is_the_same_and_warns_of_nothing():
    """kubectl edit / get -o yaml | replace send the defaults back: they parse to the same object."""
    dep, warnings = _parse(DEPLOYMENT)
    again = yaml.safe_load(DEPLOYMENT)
    again["spec"]["template"]["spec"] = dep.template.spec.raw
    dep2, warnings2 = _parse(yaml.safe_dump(again))
    assert dep2.template.raw == dep.template.raw
    assert warnings2 == warnings


def test_defaulting_an_invalid_spec_does_not_raise():
    """Defaulting runs on what validation is still judging: wrong shapes are left to it."""
    for spec in ({"containers": "x"}, {"containers": [{"ports": 5, "env": "a", "lifecycle": []}]},
                 {"volumes": [{"name": "v", "projected": {"sources": 3}}], "containers": [1]},
                 {"containers": [{"resources": {"limits": {"cpu": "1"}, "requests": "x"}}]}):
        defaults.pod_defaults(defaults.pod_spec(spec))
