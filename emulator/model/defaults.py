"""The API server's defaults for pod specs, applied when an object is written.

A cluster stores what ``SetDefaults_*`` in Kubernetes' pkg/apis/core/v1/defaults.go (and the
declarative ``+default`` markers) fill in, so ``kubectl get -o yaml`` shows them and a client
that reads an object, changes it and writes it back sends them too. Pod templates get the
PodSpec-level defaults (the pod-template-hash is computed over the defaulted template, as
kube-controller-manager computes it over the stored one, so ``kubectl rollout undo`` finds the
old ReplicaSet); pods get the Pod-level ones on top (``pod_defaults``), as the API server does
when a controller creates a pod from a template.

Written here rather than taken from a library: the only implementations are Go. Defaults that
need admission plugins (the ServiceAccount's token volume, priority, default tolerations) are not
defaults: model/podadmission.py adds them when a pod is stored.
"""
from __future__ import annotations

import copy
from typing import Any

TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_MODE = 0o644  # secret, configMap, downwardAPI and projected volumes (420)
TOKEN_EXPIRATION = 3600


def _items(value: Any) -> list:
    """A list field's items; anything else (an invalid manifest, refused by validation) none."""
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or no tag (and no digest), otherwise IfNotPresent (parsers.ParseImageName)."""
    reference, _, digest = image.partition("@")
    last = reference.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def _http_get(action: Any) -> None:
    if isinstance(action, dict):
        action.setdefault("path", "/")
        action.setdefault("scheme", "HTTP")


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _http_get(probe.get("httpGet"))


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    if not container.get("imagePullPolicy") and isinstance(container.get("image"), str):
        container["imagePullPolicy"] = image_pull_policy(container["image"])
    container.setdefault("terminationMessagePath", TERMINATION_MESSAGE_PATH)
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in _items(container.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for key in ("readinessProbe", "livenessProbe", "startupProbe"):
        _probe(container.get(key))
    for hook in (_mapping(container.get("lifecycle")).get(k) for k in ("preStop", "postStart")):
        if isinstance(hook, dict):
            _http_get(hook.get("httpGet"))
    for env in _items(container.get("env")):
        field_ref = _mapping(_mapping(env).get("valueFrom")).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _volume(volume: Any) -> None:
    if not isinstance(volume, dict):
        return
    if not any(volume.get(k) is not None for k in volume if k != "name"):
        volume["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(volume.get(key), dict):
            volume[key].setdefault("defaultMode", DEFAULT_MODE)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    for source in _items(_mapping(volume.get("projected")).get("sources")):
        token = source.get("serviceAccountToken") if isinstance(source, dict) else None
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", TOKEN_EXPIRATION)


def pod_spec(raw: dict) -> dict:
    """A PodSpec (of a pod or a template) with SetDefaults_PodSpec's and its parts' defaults."""
    spec = copy.deepcopy(raw)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in _items(spec.get(key)):
            _container(container)
    for volume in _items(spec.get("volumes")):
        _volume(volume)
    return spec


def pod_defaults(spec: dict) -> dict:
    """SetDefaults_Pod on top of a defaulted PodSpec: what only a Pod gets (requests copied from
    limits, enableServiceLinks, a host-network pod's container ports as host ports)."""
    out = copy.deepcopy(spec)
    out.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers"):
        for container in _items(out.get(key)):
            if not isinstance(container, dict):
                continue
            resources = _mapping(container.get("resources"))
            requests = resources.setdefault("requests", {}) if isinstance(resources.get("limits"), dict) else None
            if isinstance(requests, dict):
                for name, value in resources["limits"].items():
                    requests.setdefault(name, value)
            if out.get("hostNetwork"):
                for port in _items(container.get("ports")):
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    return out
