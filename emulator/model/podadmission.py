"""What kube-apiserver's admission plugins write into a pod when it is stored.

A kubeadm cluster runs, among others, DefaultTolerationSeconds, Priority and ServiceAccount:
every pod read back carries their fields, which ``kubectl describe pod`` shows (Priority,
Service Account, Tolerations ``node.kubernetes.io/not-ready:NoExecute op=Exists for 300s``).
k8semu adds the same fields, so a pod read back looks as on a cluster, and so a later fault
(a node NotReady, #16) finds the tolerations that decide when its pods are evicted.

Written here after plugin/pkg/admission/defaulttolerationseconds and priority, and the
ServiceAccount plugin's ``serviceAccountName`` default. Not made: the ServiceAccount plugin's
``kube-api-access-*`` projected volume (the kubelet mounts the same files at the same path
without it, see runtime/kubevolumes.py).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from emulator.model.pod import Pod, Toleration

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300  # kube-apiserver's --default-not-ready-toleration-seconds (and unreachable)
# the PriorityClasses every cluster has (scheduling/v1 SystemPriorityClasses); no other is served
SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
NO_CLASS_PRIORITY = 0  # no PriorityClass named and none is globalDefault
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


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


def admit(pod: Pod) -> Pod:
    """``pod`` with the admission plugins' fields added; a pod that has them is returned as it
    is (the plugins run on each write here, where the API server runs them on create, so they
    must add nothing twice)."""
    raw = dict(pod.spec.raw)
    tolerations = pod.spec.tolerations
    raw_tolerations = list(raw.get("tolerations") or [])
    for key in (NOT_READY, UNREACHABLE):
        if not _tolerated(tolerations, key):
            tolerations += (Toleration(key, "Exists", "", "NoExecute"),)
            raw_tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    if raw_tolerations:
        raw["tolerations"] = raw_tolerations
    priority = computed_priority(raw)
    if priority is not None:
        raw.setdefault("priority", priority)
        raw.setdefault("preemptionPolicy", "PreemptLowerPriority")
    if not (pod.owner and pod.owner[0] == "Node"):  # a mirror pod runs as no ServiceAccount
        account = raw.get("serviceAccountName") or raw.get("serviceAccount") or "default"
        raw["serviceAccountName"] = raw["serviceAccount"] = account
    if raw == pod.spec.raw and tolerations == pod.spec.tolerations:
        return pod
    return replace(pod, spec=replace(pod.spec, tolerations=tolerations, raw=raw))
