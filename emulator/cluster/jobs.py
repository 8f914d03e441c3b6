"""The Job controller, as kube-controller-manager's for NonIndexed Jobs: pods ``<job>-<random>``
labelled with the Job's uid and name, at most ``parallelism`` active, until ``completions`` of
them have succeeded (without completions: until one has and none is active), or until more
than ``backoffLimit`` have failed (with restartPolicy OnFailure: as many container restarts),
when the active ones are deleted and the Job is Failed. Suspended, it runs no pod.

Succeeded and failed pods are counted by uid as the controller sees them end (its
uncountedTerminatedPods bookkeeping), so deleting a finished pod does not undo its count. The
conditions are those of Kubernetes 1.31+: SuccessCriteriaMet then Complete, FailureTarget then
Failed. Not emulated: the back-off delay before a failed pod is replaced (10 s, doubling), which
here is immediate; activeDeadlineSeconds and ttlSecondsAfterFinished (accepted with a warning).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from emulator.cluster.store import ClusterState, Record
from emulator.model import naming
from emulator.model.meta import ObjectMeta
from emulator.model.pod import Pod
from emulator.model.selectors import LabelSelector
from emulator.model.workload import Job

SOURCE = "job-controller"
UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


@dataclass
class Track:
    """What the controller remembers of a Job between passes."""
    start: float = 0.0
    completion: float = 0.0
    succeeded: set[str] = field(default_factory=set)  # pod uids
    failed: set[str] = field(default_factory=set)
    conditions: list[dict] = field(default_factory=list)  # type, status, reason, message, time

    @property
    def finished(self) -> str:
        """"Complete", "Failed" or ""."""
        return next((c["type"] for c in self.conditions if c["type"] in ("Complete", "Failed")), "")


def labels_for(job: Job, uid: str) -> dict[str, str]:
    """The labels the API server adds to the Job's template (and its pods)."""
    return {**{k: uid for k in UID_LABELS}, **{k: job.meta.name for k in NAME_LABELS}}


def selector_for(job: Job, uid: str) -> LabelSelector:
    return job.selector or LabelSelector({UID_LABELS[0]: uid})


def track(state: ClusterState, rec: Record) -> Track:
    return state.jobs.setdefault((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid), Track())


def _condition(t: Track, kind: str, reason: str, message: str) -> None:
    t.conditions = [c for c in t.conditions if c["type"] != kind]
    t.conditions.append({"type": kind, "status": "True", "reason": reason, "message": message, "time": time.time()})


def _active(pods: list[Record]) -> list[Record]:
    return [p for p in pods if not p.deleting and p.status.phase not in ("Succeeded", "Failed")]


def _restarts(pods: list[Record]) -> int:
    return sum(c.restart_count for p in pods for c in p.status.containers.values())


def _create(state: ClusterState, job: Job, uid: str) -> None:
    while True:
        name = naming.generate_name(f"{job.meta.name}-", state.rng)
        if state.get("Pod", job.meta.namespace, name) is None:
            break
    labels = {**job.template.labels, **labels_for(job, uid)}
    state.put("Pod", Pod(ObjectMeta(name, job.meta.namespace, labels, dict(job.template.annotations)),
                         job.template.spec, job.source, ("Job", job.meta.name)))
    state.events.normal("Job", job.meta.namespace, job.meta.name, "SuccessfulCreate", f"Created pod: {name}",
                        source=SOURCE)


def _delete(state: ClusterState, job: Job, rec: Record) -> None:
    rec.mark_deleting()
    state.events.normal("Job", job.meta.namespace, job.meta.name, "SuccessfulDelete",
                        f"Deleted pod: {rec.obj.meta.name}", source=SOURCE)


def _step(state: ClusterState, rec: Record, pods: list[Record]) -> None:
    job: Job = rec.obj
    t = track(state, rec)
    for p in pods:  # count each pod once, when it ends
        if p.status.phase == "Succeeded":
            t.succeeded.add(p.uid)
        elif p.status.phase == "Failed":
            t.failed.add(p.uid)
    if t.finished:
        return
    active = _active(pods)
    if job.template.spec.restart_policy == "OnFailure":
        limit_hit = _restarts(active) > 0 if job.backoff_limit == 0 else _restarts(active) >= job.backoff_limit
    else:
        limit_hit = len(t.failed) > job.backoff_limit
    if limit_hit:
        for p in active:
            _delete(state, job, p)
            t.failed.add(p.uid)
        message = "Job has reached the specified backoff limit"
        _condition(t, "FailureTarget", "BackoffLimitExceeded", message)
        _condition(t, "Failed", "BackoffLimitExceeded", message)
        t.completion = time.time()
        state.events.warn("Job", job.meta.namespace, job.meta.name, "BackoffLimitExceeded", message, source=SOURCE)
        return
    done = len(t.succeeded)
    if (job.completions is not None and done >= job.completions) or (job.completions is None and done and not active):
        for p in active:  # work left over once the completions are reached
            _delete(state, job, p)
        message = "Reached expected number of succeeded pods"
        _condition(t, "SuccessCriteriaMet", "CompletionsReached", message)
        _condition(t, "Complete", "CompletionsReached", message)
        t.completion = time.time()
        state.events.normal("Job", job.meta.namespace, job.meta.name, "Completed", "Job completed", source=SOURCE)
        return
    if job.suspend:
        want = 0
        if not any(c["type"] == "Suspended" for c in t.conditions):
            _condition(t, "Suspended", "JobSuspended", "Job suspended")
            state.events.normal("Job", job.meta.namespace, job.meta.name, "Suspended", "Job suspended", source=SOURCE)
        t.start = 0.0
    else:
        if any(c["type"] == "Suspended" for c in t.conditions):
            t.conditions = [c for c in t.conditions if c["type"] != "Suspended"]
            state.events.normal("Job", job.meta.namespace, job.meta.name, "Resumed", "Job resumed", source=SOURCE)
        t.start = t.start or time.time()
        if job.completions is None:  # a work queue: after one success no new pod, the others finish
            want = min(job.parallelism, len(active)) if done else job.parallelism
        else:
            want = min(job.parallelism, job.completions - done)
    for _ in range(want - len(active)):
        _create(state, job, rec.uid)
    if len(active) > want:  # parallelism lowered, or suspended: the newest go first
        for p in sorted(active, key=lambda p: -p.created)[:len(active) - want]:
            _delete(state, job, p)


def reconcile(state: ClusterState, children: dict[tuple[str, str, str], list[Record]]) -> None:
    """Every Job one step on; ``children``: pods by (owner kind, namespace, owner name)."""
    live = set()
    for rec in state.list("Job"):
        live.add((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid))
        if not rec.deleting:
            _step(state, rec, children.get(("Job", rec.obj.meta.namespace, rec.obj.meta.name), []))
    for key in [k for k in state.jobs if k not in live]:
        del state.jobs[key]


def immutable_change(old: Job, new: Job) -> str:
    """What an update may not change (the API server's: the template and completions, unless
    suspended), as a message; "" when the update is allowed."""
    if old.completions != new.completions:
        return "spec.completions: field is immutable"
    if old.template != new.template and not old.suspend:
        return "spec.template: field is immutable"
    if old.selector != new.selector:
        return "spec.selector: field is immutable"
    return ""


def status(state: ClusterState, rec: Record, pods: list[Record], stamp) -> dict:
    """The Job's status (``stamp``: a time as the API writes it)."""
    t = state.jobs.get((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid)) or Track()
    active = _active(pods)
    out: dict = {}
    if t.start:
        out["startTime"] = stamp(t.start)
    if t.completion and t.finished == "Complete":
        out["completionTime"] = stamp(t.completion)
    out.update({"active": len(active), "succeeded": len(t.succeeded), "failed": len(t.failed),
                "ready": sum(1 for p in active if p.status.ready), "uncountedTerminatedPods": {}})
    if t.conditions:
        out["conditions"] = [{"type": c["type"], "status": c["status"], "lastProbeTime": stamp(c["time"]),
                              "lastTransitionTime": stamp(c["time"]), "reason": c["reason"],
                              "message": c["message"]} for c in t.conditions]
    return {k: v for k, v in out.items() if v or k in ("ready", "uncountedTerminatedPods")}
