"""The Job controller, as kube-controller-manager's: pods ``<job>-<random>`` labelled with the
Job's uid and name, at most ``parallelism`` active, until ``completions`` of them have succeeded
(without completions: until one has and none is active), or until more than ``backoffLimit``
have failed (with restartPolicy OnFailure: as many container restarts), or until it has been
active ``activeDeadlineSeconds`` (DeadlineExceeded), when the active ones are deleted and the Job
is Failed. Suspended, it runs no pod (and its deadline restarts when it resumes). Indexed Jobs
give each pod an index (``<job>-<index>-<random>``, the index annotation and label, hostname
``<job>-<index>``, JOB_COMPLETION_INDEX in every container) until every index from 0 to
completions-1 has succeeded once; the status lists them as ``completedIndexes``. A finished Job
with ``ttlSecondsAfterFinished`` is deleted with its pods that long after it finished (the
TTL-after-finished controller).

Succeeded and failed pods are counted by uid as the controller sees them end (its
uncountedTerminatedPods bookkeeping), so deleting a finished pod does not undo its count. The
conditions are those of Kubernetes 1.31+: SuccessCriteriaMet then Complete, FailureTarget then
Failed. Not emulated: the back-off delay before a failed pod is replaced (10 s, doubling), which
here is immediate; backoffLimitPerIndex, podFailurePolicy and successPolicy (accepted with a
warning).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

from emulator.cluster import accounts
from emulator.cluster.store import ClusterState, Record
from emulator.model import naming, validation
from emulator.model.meta import ObjectMeta
from emulator.model.pod import EnvVar, Pod, PodSpec
from emulator.model.selectors import LabelSelector
from emulator.model.workload import Job

SOURCE = "job-controller"
UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
INDEX_KEY = "batch.kubernetes.io/job-completion-index"  # an Indexed Job's pod's annotation and label
INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass
class Track:
    """What the controller remembers of a Job between passes."""
    start: float = 0.0
    completion: float = 0.0
    succeeded: set[str] = field(default_factory=set)  # pod uids
    failed: set[str] = field(default_factory=set)
    conditions: list[dict] = field(default_factory=list)  # type, status, reason, message, time
    indexes: dict[str, int] = field(default_factory=dict)  # pod uid -> its completion index (Indexed)
    wake: float = 0.0  # when a deadline or a TTL falls due (0: none)

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


def index_of(pod: Record) -> int | None:
    value = pod.obj.meta.annotations.get(INDEX_KEY, "")
    return int(value) if value.isdigit() else None


def _indexed_spec(job: Job, index: int) -> PodSpec:
    """What the Job controller writes into an Indexed Job's pod: its hostname ``<job>-<index>``
    and JOB_COMPLETION_INDEX, read from the pod's annotation, in every container."""
    spec, path = job.template.spec, f"metadata.annotations['{INDEX_KEY}']"
    raw = copy.deepcopy(spec.raw)
    for c in raw.get("containers", []):
        c["env"] = [*c.get("env", []), {"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": path}}}]
    hostname = f"{job.meta.name}-{index}"
    if validation.is_dns1123_label(hostname):
        raw["hostname"] = hostname
    else:
        hostname = spec.hostname
    return replace(spec, containers=tuple(replace(c, env=(*c.env, EnvVar(INDEX_ENV, field_path=path)))
                                          for c in spec.containers), hostname=hostname, raw=raw)


def _create(state: ClusterState, job: Job, uid: str, index: int | None = None) -> None:
    prefix = f"{job.meta.name}-" if index is None else f"{job.meta.name}-{index}-"
    if accounts.refused(state, "Job", job, job.template.spec, prefix, SOURCE):
        return
    while True:
        name = naming.generate_name(prefix, state.rng)
        if state.get("Pod", job.meta.namespace, name) is None:
            break
    labels = {**job.template.labels, **labels_for(job, uid)}
    annotations = dict(job.template.annotations)
    if index is not None:
        labels[INDEX_KEY] = annotations[INDEX_KEY] = str(index)
    state.put("Pod", Pod(ObjectMeta(name, job.meta.namespace, labels, annotations),
                         job.template.spec if index is None else _indexed_spec(job, index), job.source,
                         ("Job", job.meta.name)))
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
        if job.indexed and index_of(p) is not None:
            t.indexes[p.uid] = index_of(p)
    if t.finished:
        t.wake = t.completion + job.ttl_after_finished if job.ttl_after_finished is not None else 0.0
        return
    active = _active(pods)
    if job.active_deadline is not None and t.start and time.time() >= t.start + job.active_deadline:
        _fail(state, job, t, active, "DeadlineExceeded", "Job was active longer than specified deadline")
        return
    if job.template.spec.restart_policy == "OnFailure":
        limit_hit = _restarts(active) > 0 if job.backoff_limit == 0 else _restarts(active) >= job.backoff_limit
    else:
        limit_hit = len(t.failed) > job.backoff_limit
    if limit_hit:
        _fail(state, job, t, active, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        return
    done = len(completed_indexes(t)) if job.indexed else len(t.succeeded)
    if (job.completions is not None and done >= job.completions) or (job.completions is None and done and not active):
        for p in active:  # work left over once the completions are reached
            _delete(state, job, p)
        message = "Reached expected number of succeeded pods"
        _condition(t, "SuccessCriteriaMet", "CompletionsReached", message)
        _condition(t, "Complete", "CompletionsReached", message)
        t.completion = time.time()
        t.wake = t.completion + job.ttl_after_finished if job.ttl_after_finished is not None else 0.0
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
        t.wake = t.start + job.active_deadline if job.active_deadline is not None else 0.0
        if job.completions is None:  # a work queue: after one success no new pod, the others finish
            want = min(job.parallelism, len(active)) if done else job.parallelism
        else:
            want = min(job.parallelism, job.completions - done)
    if job.indexed:  # the lowest indexes that have neither succeeded nor a pod at work
        busy = completed_indexes(t) | {index_of(p) for p in active}
        pending = [i for i in range(job.completions or 0) if i not in busy]
        for index in pending[:max(0, want - len(active))]:
            _create(state, job, rec.uid, index)
    for _ in range(0 if job.indexed else want - len(active)):
        _create(state, job, rec.uid)
    if len(active) > want:  # parallelism lowered, or suspended: the newest go first
        for p in sorted(active, key=lambda p: -p.created)[:len(active) - want]:
            _delete(state, job, p)


def _fail(state: ClusterState, job: Job, t: Track, active: list[Record], reason: str, message: str) -> None:
    for p in active:
        _delete(state, job, p)
        t.failed.add(p.uid)
    _condition(t, "FailureTarget", reason, message)
    _condition(t, "Failed", reason, message)
    t.completion = time.time()
    t.wake = t.completion + job.ttl_after_finished if job.ttl_after_finished is not None else 0.0
    state.events.warn("Job", job.meta.namespace, job.meta.name, reason, message, source=SOURCE)


def completed_indexes(t: Track) -> set[int]:
    return {t.indexes[u] for u in t.succeeded if u in t.indexes}


def index_ranges(indexes: set[int]) -> str:
    """``completedIndexes`` as the API writes it: ``0-2,4``."""
    out, ordered = [], sorted(indexes)
    while ordered:
        first = last = ordered.pop(0)
        while ordered and ordered[0] == last + 1:
            last = ordered.pop(0)
        out.append(str(first) if first == last else f"{first}-{last}")
    return ",".join(out)


def due(state: ClusterState, now: float) -> bool:
    """A Job's deadline or time to live falls due by ``now`` (the manager then runs the controllers)."""
    return any(t.wake and t.wake <= now for t in state.jobs.values())


def _expire(state: ClusterState, rec: Record) -> None:
    """The TTL-after-finished controller: the Job and its pods go (background propagation)."""
    state.remove("Job", rec.obj.meta.namespace, rec.obj.meta.name)
    for pod in state.pods(rec.obj.meta.namespace):
        if pod.obj.owner == ("Job", rec.obj.meta.name) and not pod.deleting:
            pod.mark_deleting()


def reconcile(state: ClusterState, children: dict[tuple[str, str, str], list[Record]]) -> None:
    """Every Job one step on; ``children``: pods by (owner kind, namespace, owner name)."""
    live = set()
    for rec in state.list("Job"):
        if rec.deleting:
            live.add((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid))
            continue
        _step(state, rec, children.get(("Job", rec.obj.meta.namespace, rec.obj.meta.name), []))
        t = track(state, rec)
        if t.finished and rec.obj.ttl_after_finished is not None and t.wake <= time.time():
            _expire(state, rec)
            continue
        live.add((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid))
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
    if rec.obj.indexed:
        out["completedIndexes"] = index_ranges(completed_indexes(t))
    if t.conditions:
        out["conditions"] = [{"type": c["type"], "status": c["status"], "lastProbeTime": stamp(c["time"]),
                              "lastTransitionTime": stamp(c["time"]), "reason": c["reason"],
                              "message": c["message"]} for c in t.conditions]
    return {k: v for k, v in out.items() if v or k in ("ready", "uncountedTerminatedPods")}
