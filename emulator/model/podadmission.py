"""What kube-apiserver's admission plugins write into a pod when it is stored.

A kubeadm cluster runs, among others, DefaultTolerationSeconds, Priority and ServiceAccount:
every pod read back carries their fields, which ``kubectl describe pod`` shows (Priority,
Service Account, Tolerations ``node.kubernetes.io/not-ready:NoExecute op=Exists for 300s``).
k8semu adds the same fields, so a pod read back looks as on a cluster, and so a later fault
(a node NotReady, #16) finds the tolerations that decide when its pods are evicted.

Written here after plugin/pkg/admission/defaulttolerationseconds, priority and serviceaccount:
the ServiceAccount plugin names the account (``default``) and adds the ``kube-api-access-*``
projected volume (the account's token, the namespace's ``kube-root-ca.crt``, the namespace) that
every container mounts read-only at /var/run/secrets/kubernetes.io/serviceaccount, which is how
the kubelet gives a pod its token: ``kubectl describe pod`` lists it under Mounts and Volumes.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from emulator.model import validation
from emulator.model.pod import Pod, Toleration
from emulator.model.volume import DEFAULT_MODE, FieldFile, KeyFile, Projection, Volume, VolumeMount

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300  # kube-apiserver's --default-not-ready-toleration-seconds (and unreachable)
# the PriorityClasses every cluster has (scheduling/v1 SystemPriorityClasses); no other is served
SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
NO_CLASS_PRIORITY = 0  # no PriorityClass named and none is globalDefault
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"  # DefaultAPITokenMountPath
TOKEN_SECONDS = 3607  # the plugin's token: an hour and seven seconds (kubelet renews it)
ROOT_CA = "kube-root-ca.crt"
VOLUME_PREFIX = "kube-api-access-"
NAME_LETTERS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet


def account_name(raw: dict[str, Any]) -> str:
    """The ServiceAccount a pod spec names (``serviceAccountName``, else the deprecated
    ``serviceAccount``), ``default`` when none (or when the name is not one: validation refuses
    such a spec, so only a spec never validated can say it)."""
    name = raw.get("serviceAccountName") or raw.get("serviceAccount") or "default"
    return name if isinstance(name, str) and validation.is_dns1123_subdomain(name) else "default"


def _token_volume_name(pod: Pod) -> str:
    """``kube-api-access-`` and five letters of the plugin's alphabet. The plugin draws them at
    random; here they come from the pod's namespace and name, so that admitting a pod again
    (each write here) names the same volume."""
    digest = hashlib.sha256(f"{pod.meta.namespace}/{pod.meta.name}".encode()).digest()
    return VOLUME_PREFIX + "".join(NAME_LETTERS[b % len(NAME_LETTERS)] for b in digest[:5])


def _mounts_token_path(raw: dict[str, Any]) -> bool:
    return any(isinstance(m, dict) and m.get("mountPath") == TOKEN_PATH
               for key in ("containers", "initContainers") for c in raw.get(key) or [] if isinstance(c, dict)
               for m in c.get("volumeMounts") or [])


def _with_token_volume(pod: Pod, raw: dict[str, Any]) -> tuple[dict[str, Any], Pod]:
    """The ServiceAccount plugin's volume and a read-only mount of it in every container."""
    name = _token_volume_name(pod)
    raw["volumes"] = [*(raw.get("volumes") or []), {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]
    mount = {"name": name, "readOnly": True, "mountPath": TOKEN_PATH}
    for key in ("containers", "initContainers"):
        if raw.get(key):
            raw[key] = [{**c, "volumeMounts": [*(c.get("volumeMounts") or []), mount]} if isinstance(c, dict) else c
                        for c in raw[key]]
    volume = Volume(name, "projected", (
        Projection("ServiceAccountToken", path="token", expiration=TOKEN_SECONDS),
        Projection("ConfigMap", name=ROOT_CA, items=(KeyFile("ca.crt", "ca.crt"),)),
        Projection("DownwardAPI", fields=(FieldFile("namespace", field_path="metadata.namespace"),))), DEFAULT_MODE)
    containers = tuple(replace(c, mounts=c.mounts + (VolumeMount(name, TOKEN_PATH, read_only=True),))
                       for c in pod.spec.containers)
    return raw, replace(pod, spec=replace(pod.spec, volumes=pod.spec.volumes + (volume,), containers=containers))


def computed_priority(raw: dict[str, Any]) -> int | None:
    """The priority the Priority plugin gives a pod spec: its class's value, 0 without a class;
    None for a class k8semu does not have (the API server would refuse the pod)."""
    name = raw.get("priorityClassName") or ""
    if not name:
        return NO_CLASS_PRIORITY
    return SYSTEM_PRIORITIES.get(name) if isinstance(name, str) else None


def _tolerated(tolerations: tuple[Toleration, ...], key: str) -> bool:
    """As DefaultTolerationSeconds asks: a toleration of ``key`` (or of every key) for NoExecute
    (or every effect) is already there."""
    return any(t.key in (key, "") and t.effect in ("NoExecute", "") for t in tolerations)


def admit(pod: Pod, account_automount: bool | None = None) -> Pod:
    """``pod`` with the admission plugins' fields added; a pod that has them is returned as it
    is (the plugins run on each write here, where the API server runs them on create, so they
    must add nothing twice). ``account_automount``: its ServiceAccount's
    ``automountServiceAccountToken`` (None: unset), which decides when the pod does not."""
    raw = dict(pod.spec.raw)
    tolerations = pod.spec.tolerations
    raw_tolerations = list(raw.get("tolerations") or [])
    for key in (NOT_READY, UNREACHABLE):
        if not _tolerated(tolerations, key):
            tolerations += (Toleration(key, "Exists", "", "NoExecute", DEFAULT_TOLERATION_SECONDS),)
            raw_tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    if raw_tolerations:
        raw["tolerations"] = raw_tolerations
    priority = computed_priority(raw)
    if priority is not None:
        raw.setdefault("priority", priority)
        raw.setdefault("preemptionPolicy", "PreemptLowerPriority")
    mounted = pod
    if not (pod.owner and pod.owner[0] == "Node"):  # a mirror pod runs as no ServiceAccount
        raw["serviceAccountName"] = raw["serviceAccount"] = account_name(raw)
        automount = raw.get("automountServiceAccountToken")
        if automount is None:
            automount = account_automount
        if automount is not False and not _mounts_token_path(raw):
            raw, mounted = _with_token_volume(pod, raw)
    if raw == pod.spec.raw and tolerations == pod.spec.tolerations:
        return pod
    return replace(mounted, spec=replace(mounted.spec, tolerations=tolerations, raw=raw))
