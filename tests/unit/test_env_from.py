"""A container's environment from ConfigMaps and Secrets (``valueFrom.configMapKeyRef``,
``secretKeyRef``, ``envFrom``), as the API server checks it and the kubelet builds it."""
from __future__ import annotations

import pytest

from emulator.model import podfiles
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_object

POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: busybox
      envFrom:
        - configMapRef: {name: game}
        - secretRef: {name: creds}
          prefix: SECRET_
      env:
%s
"""


def pod(env: str):
    objs, problems, warnings = parse_object(load_text(POD % env, "pod.yaml")[0])
    return objs, "\n".join(str(p) for p in problems), warnings


def environment(env: str, stored: dict) -> dict[str, str]:
    (p,), problems, _ = pod(env)
    assert not problems
    return podfiles.container_env(p, p.spec.containers[0], "10.0.0.5", "n1", "172.18.0.2", "/c",
                                  lookup=lambda kind, name: stored.get((kind, name)))


STORED = {("ConfigMap", "game"): {"lives": "3", "level": "easy", "bad=key": "x"},
          ("Secret", "creds"): {"user": "admin"}}


def test_env_from_and_key_refs_resolve_in_the_kubelets_order():
    env = environment("""        - {name: level, value: hard}
        - name: LIVES
          valueFrom: {configMapKeyRef: {name: game, key: lives}}
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: creds, key: user}}
        - name: MAYBE
          valueFrom: {configMapKeyRef: {name: absent, key: x, optional: true}}""", STORED)
    assert env["lives"] == "3" and env["level"] == "hard"  # env after envFrom: it wins
    assert env["SECRET_user"] == "admin" and env["LIVES"] == "3" and env["PASSWORD"] == "admin"
    assert "MAYBE" not in env and "bad=key" not in env  # optional and absent; not a variable name


@pytest.mark.parametrize("env, stored, message", [
    ("        - {name: A, value: x}", {("Secret", "creds"): {}}, 'configmap "game" not found'),
    ("        - name: A\n          valueFrom: {configMapKeyRef: {name: game, key: nope}}", STORED,
     "couldn't find key nope in ConfigMap default/game"),
    ("        - name: A\n          valueFrom: {secretKeyRef: {name: other, key: k}}", STORED, 'secret "other" not found'),
])
def test_a_missing_source_is_a_container_config_error(env, stored, message):
    with pytest.raises(podfiles.ContainerConfigError, match=message):
        environment(env, stored)


def test_the_api_servers_checks_on_env_sources():
    _, problems, _ = pod("""        - name: A
          value: x
          valueFrom: {configMapKeyRef: {name: game, key: k}}
        - name: B
          valueFrom: {configMapKeyRef: {name: game, key: k}, secretKeyRef: {name: creds, key: k}}
        - name: C
          valueFrom: {configMapKeyRef: {name: Game_, key: 'bad key'}}""")
    assert "may not be specified when `value` is not empty" in problems
    assert "may not have more than one field specified at a time" in problems
    assert "a valid config key must consist of alphanumeric characters" in problems
    assert "is not a valid DNS-1123 subdomain" in problems


def test_the_downward_api_in_env_labels_annotations_and_resources():
    """``fieldRef`` with ``metadata.labels['k']`` and ``resourceFieldRef`` (the container defaults
    to the variable's own; a limit not set is the node's capacity), as the kubelet resolves them."""
    text = """apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: web}, annotations: {owner: me}}
spec:
  containers:
    - name: c
      image: busybox
      resources: {limits: {memory: 128Mi}}
      env:
        - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
        - {name: OWNER, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['owner']"}}}
        - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
        - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
        - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
"""
    (p,), problems, _ = parse_object(load_text(text, "pod.yaml")[0])
    assert not problems
    env = podfiles.container_env(p, p.spec.containers[0], "10.0.0.5", "n1", "172.18.0.2", "/c",
                                 facts=podfiles.PodFacts("uid-7", 2000, 1 << 30))
    assert (env["APP"], env["OWNER"], env["MEM"], env["CPU"], env["UID"]) == ("web", "me", "128", "2000", "uid-7")
    bad = text.replace("resource: limits.memory, divisor: 1Mi", "resource: limits.memory, containerName: nope")
    (_, problems, _) = parse_object(load_text(bad, "pod.yaml")[0])
    assert "must be the name of a container" in str(problems[0])
