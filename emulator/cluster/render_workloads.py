"""StatefulSets, DaemonSets and Jobs in the shape the API server returns them (spec with the
defaults the API server fills in, status as their controllers report it)."""
from __future__ import annotations

import copy
from typing import Any

from emulator.cluster import daemonsets, jobs, statefulsets
from emulator.cluster.apimeta import meta, timestamp
from emulator.cluster.store import ClusterState, Record
from emulator.model.pod import PodTemplate


def template_object(template: PodTemplate) -> dict:
    out: dict[str, Any] = {"metadata": {"labels": dict(template.labels)}, "spec": copy.deepcopy(template.spec.raw)}
    if template.annotations:
        out["metadata"]["annotations"] = dict(template.annotations)
    return out


def _pods(state: ClusterState, kind: str, rec: Record, children: dict | None) -> list[Record]:
    key = (kind, rec.obj.meta.namespace, rec.obj.meta.name)
    if children is not None:
        return children.get(key, [])
    return [p for p in state.pods(rec.obj.meta.namespace) if p.obj.owner == (kind, rec.obj.meta.name)]


def statefulset_object(rec: Record, state: ClusterState, children: dict | None = None) -> dict:
    """``children``: pods by (owner kind, namespace, owner name), when listing many."""
    sts = rec.obj
    spec: dict[str, Any] = {"replicas": sts.replicas, "selector": sts.selector.to_dict(),
                            "template": template_object(sts.template), "serviceName": sts.service_name,
                            "podManagementPolicy": sts.pod_management,
                            "updateStrategy": {"type": sts.update_strategy},
                            "revisionHistoryLimit": sts.revision_history_limit}
    if sts.update_strategy == "RollingUpdate":
        spec["updateStrategy"]["rollingUpdate"] = {"partition": sts.partition}
    if sts.ordinals_start:
        spec["ordinals"] = {"start": sts.ordinals_start}
    status = statefulsets.status(state, rec, _pods(state, "StatefulSet", rec, children))
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(rec), "spec": spec,
            "status": {k: v for k, v in status.items() if v or k in ("replicas", "collisionCount")}}


def daemonset_object(rec: Record, state: ClusterState, children: dict | None = None) -> dict:
    """``children``: as for ``statefulset_object``."""
    ds = rec.obj
    strategy: dict[str, Any] = {"type": ds.update_strategy}
    if ds.update_strategy == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxUnavailable": ds.max_unavailable, "maxSurge": ds.max_surge}
    spec = {"selector": ds.selector.to_dict(), "template": template_object(ds.template), "updateStrategy": strategy,
            "revisionHistoryLimit": ds.revision_history_limit}
    status = daemonsets.status(state, rec, _pods(state, "DaemonSet", rec, children))
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta(rec), "spec": spec,
            "status": status}


def job_object(rec: Record, state: ClusterState, children: dict | None = None) -> dict:
    """A Job with the selector and template labels the API server generates from its uid."""
    job = rec.obj
    template = template_object(job.template)
    template["metadata"]["labels"] = {**job.template.labels, **({} if job.selector else jobs.labels_for(job, rec.uid))}
    spec: dict[str, Any] = {"parallelism": job.parallelism, "backoffLimit": job.backoff_limit,
                            "selector": jobs.selector_for(job, rec.uid).to_dict(), "manualSelector": bool(job.selector),
                            "template": template, "completionMode": "NonIndexed", "suspend": job.suspend,
                            "podReplacementPolicy": "TerminatingOrFailed"}
    if job.completions is not None:
        spec["completions"] = job.completions
    if not job.selector:
        del spec["manualSelector"]
    status = jobs.status(state, rec, _pods(state, "Job", rec, children), timestamp)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(rec), "spec": spec, "status": status}
