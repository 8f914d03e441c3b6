"""StatefulSets, DaemonSets and Jobs in the shape the API server returns them (spec with the
defaults the API server fills in, status as their controllers report it)."""
from __future__ import annotations

import copy
import uuid
from typing import Any

from emulator.cluster import cronjobs, daemonsets, jobs, statefulsets
from emulator.cluster.apimeta import meta, timestamp
from emulator.cluster.revisions import REVISION_LABEL
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
    if sts.min_ready:
        spec["minReadySeconds"] = sts.min_ready
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
    if ds.min_ready:
        spec["minReadySeconds"] = ds.min_ready
    status = daemonsets.status(state, rec, _pods(state, "DaemonSet", rec, children))
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta(rec), "spec": spec,
            "status": status}


def job_object(rec: Record, state: ClusterState, children: dict | None = None) -> dict:
    """A Job with the selector and template labels the API server generates from its uid."""
    job = rec.obj
    spec = _job_spec(job)
    spec["template"]["metadata"]["labels"] = {**job.template.labels,
                                              **({} if job.selector else jobs.labels_for(job, rec.uid))}
    spec.update(selector=jobs.selector_for(job, rec.uid).to_dict(), podReplacementPolicy="TerminatingOrFailed")
    if job.selector:
        spec["manualSelector"] = True
    status = jobs.status(state, rec, _pods(state, "Job", rec, children), timestamp)
    owner = state.get(job.owner[0], job.meta.namespace, job.owner[1]) if job.owner else None
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(rec, owner_uid=owner.uid if owner else ""),
            "spec": spec, "status": status}


def _job_spec(job) -> dict:
    """A JobSpec as the API shows it (a Job's, or a CronJob's jobTemplate's)."""
    spec: dict[str, Any] = {"parallelism": job.parallelism, "backoffLimit": job.backoff_limit,
                            "template": template_object(job.template),
                            "completionMode": "Indexed" if job.indexed else "NonIndexed", "suspend": job.suspend}
    if job.completions is not None:
        spec["completions"] = job.completions
    if job.active_deadline is not None:
        spec["activeDeadlineSeconds"] = job.active_deadline
    if job.ttl_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = job.ttl_after_finished
    return spec


def cronjob_object(rec: Record, state: ClusterState, children: dict | None = None) -> dict:
    """A CronJob with the defaults the API server fills in and its controller's status."""
    cj = rec.obj
    template: dict[str, Any] = {"metadata": {}, "spec": _job_spec(cj.job)}
    if cj.job_labels:
        template["metadata"]["labels"] = dict(cj.job_labels)
    if cj.job_annotations:
        template["metadata"]["annotations"] = dict(cj.job_annotations)
    spec: dict[str, Any] = {"schedule": cj.schedule, "concurrencyPolicy": cj.concurrency, "suspend": cj.suspend,
                            "jobTemplate": template, "successfulJobsHistoryLimit": cj.successful_history,
                            "failedJobsHistoryLimit": cj.failed_history}
    if cj.time_zone:
        spec["timeZone"] = cj.time_zone
    if cj.starting_deadline is not None:
        spec["startingDeadlineSeconds"] = cj.starting_deadline
    key = (rec.obj.meta.namespace, rec.obj.meta.name)
    owned = children.get(("CronJob", *key), []) if children is not None else \
        [r for r in state.list("Job", key[0]) if r.obj.owner == ("CronJob", key[1])]
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(rec), "spec": spec,
            "status": cronjobs.status(state, rec, owned, timestamp)}


def controller_revisions(state: ClusterState, namespace: str | None) -> list[dict]:
    """The ControllerRevisions of every StatefulSet and DaemonSet (``apps/v1``), as their
    controllers write them: named ``<owner>-<hash>``, labelled with the template's labels and
    the hash, owned by the workload, ``data`` the patch that puts the template back (the
    template with ``$patch: replace``, which ``kubectl rollout undo`` sends) and ``revision``
    its number."""
    out = []
    for (kind, ns, name), hist in sorted(state.workloads.items()):
        owner = state.get(kind, ns, name)
        if owner is None or (namespace is not None and ns != namespace) or kind not in ("StatefulSet", "DaemonSet"):
            continue
        for rev, template in hist.templates.items():
            cr_name = rev if kind == "StatefulSet" else f"{name}-{rev}"  # a StatefulSet's label is the name already
            metadata: dict[str, Any] = {
                "name": cr_name, "namespace": ns, "uid": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{owner.uid}/{rev}")),
                "creationTimestamp": timestamp(hist.created.get(rev, owner.created)),
                "labels": {**template.labels, REVISION_LABEL: rev},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": owner.uid,
                                     "controller": True, "blockOwnerDeletion": True}]}
            if hist.annotations.get(rev):
                metadata["annotations"] = dict(hist.annotations[rev])
            out.append({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
                        "data": {"spec": {"template": {**template_object(template), "$patch": "replace"}}},
                        "revision": hist.numbers.get(rev, 0)})
    return out
