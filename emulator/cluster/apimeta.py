"""ObjectMeta as the API server returns it (shared by every API-shaped rendering)."""
from __future__ import annotations

import time
from typing import Any

from emulator.cluster.store import Record
from emulator.spec.kinds import SUPPORTED_KINDS

KUBE_VERSION = "v1.29.0"  # the Kubernetes version the cluster reports (/version, nodes, kubeadm-config)


def timestamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def meta(rec: Record, namespaced: bool = True, owner_uid: str = "") -> dict:
    """``owner_uid``: the uid of the object's controller (ownerReferences carry it; clients
    such as the Python client require it)."""
    m = rec.obj.meta
    out: dict[str, Any] = {"name": m.name}
    if namespaced:
        out["namespace"] = m.namespace
    out.update({"uid": rec.uid, "resourceVersion": str(rec.id),
                "creationTimestamp": timestamp(rec.created)})
    if m.labels:
        out["labels"] = dict(m.labels)
    if m.annotations:
        out["annotations"] = dict(m.annotations)
    if rec.finalizers:  # an owner deleted in the foreground, waiting for its dependents
        out["finalizers"] = list(rec.finalizers)
        out["deletionTimestamp"] = timestamp(rec.deletion_time)
        out["deletionGracePeriodSeconds"] = 0
    owner = getattr(rec.obj, "owner", None)
    if owner:
        out["ownerReferences"] = [{"apiVersion": SUPPORTED_KINDS.get(owner[0], "v1"), "kind": owner[0], "name": owner[1], "uid": owner_uid,
                                   "controller": True, "blockOwnerDeletion": True}]
        if owner[0] == "ReplicaSet":
            out["generateName"] = owner[1] + "-"
    return out
