"""The CronJob controller, as kube-controller-manager's (cronjob controllerv2): at each time its
schedule names (croniter reads the five fields, in the CronJob's time zone, UTC by default) a
Job ``<cronjob>-<minutes since the epoch>`` made from its jobTemplate and owned by it.

Only the most recent missed time is run (after more than 100 missed, with an event, as
upstream); one older than ``startingDeadlineSeconds`` is skipped. ``concurrencyPolicy``: Allow
runs beside active Jobs, Forbid waits for them (the time counts as missed, and runs once they
end if still within the deadline), Replace deletes them first. Finished Jobs beyond
``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are deleted, oldest first. Time is
the manager's clock: the manager runs this on each tick when a time is due (``due``).
"""
from __future__ import annotations

import datetime
import time
import zoneinfo
from dataclasses import dataclass, replace

from croniter import croniter

from emulator.cluster.store import ClusterState, Record
from emulator.model.meta import ObjectMeta
from emulator.model.workload import CronJob, Job

SOURCE = "cronjob-controller"
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


@dataclass
class Track:
    last_schedule: float = 0.0
    last_success: float = 0.0
    seen_finished: frozenset = frozenset()  # Jobs whose end was reported (SawCompletedJob)


def _zone(cj: CronJob) -> datetime.tzinfo:
    return zoneinfo.ZoneInfo(cj.time_zone) if cj.time_zone else datetime.timezone.utc


def times_between(cj: CronJob, after: float, until: float, limit: int = MAX_MISSED + 1) -> list[float]:
    """The schedule's times in (after, until], at most ``limit`` of the earliest."""
    it = croniter(cj.schedule, datetime.datetime.fromtimestamp(after, _zone(cj)))
    out: list[float] = []
    while len(out) < limit:
        t = it.get_next(float)
        if t > until:
            break
        out.append(t)
    return out


def next_time(cj: CronJob, after: float) -> float:
    return croniter(cj.schedule, datetime.datetime.fromtimestamp(after, _zone(cj))).get_next(float)


def track(state: ClusterState, rec: Record) -> Track:
    return state.cronjobs.setdefault((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid), Track())


def due(state: ClusterState, now: float) -> bool:
    """A CronJob has a time to run by ``now`` (the manager then runs the controllers)."""
    for rec in state.list("CronJob"):
        if not rec.obj.suspend and not rec.deleting:
            t = state.cronjobs.get((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid))
            if next_time(rec.obj, t.last_schedule if t and t.last_schedule else rec.created) <= now:
                return True
    return False


def job_name(cj: CronJob, scheduled: float) -> str:
    return f"{cj.meta.name}-{int(scheduled // 60)}"


def _finished(state: ClusterState, rec: Record) -> str:
    t = state.jobs.get((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid))
    return t.finished if t else ""


def _history(state: ClusterState, cj: CronJob, owned: list[Record], t: Track) -> None:
    """Report Jobs that ended, note the last success, and keep only the history limits."""
    for kind, limit in (("Complete", cj.successful_history), ("Failed", cj.failed_history)):
        done = sorted((j for j in owned if _finished(state, j) == kind), key=lambda j: j.created)
        for j in done:
            if j.uid not in t.seen_finished:
                t.seen_finished = t.seen_finished | {j.uid}
                state.events.normal("CronJob", cj.meta.namespace, cj.meta.name, "SawCompletedJob",
                                    f"Saw completed job: {j.obj.meta.name}, status: {kind}", source=SOURCE)
                if kind == "Complete":
                    ended = state.jobs.get((j.obj.meta.namespace, j.obj.meta.name, j.uid))
                    t.last_success = max(t.last_success, ended.completion if ended else time.time())
        for j in done[:max(0, len(done) - limit)]:
            _delete_job(state, cj, j)


def _delete_job(state: ClusterState, cj: CronJob, rec: Record) -> None:
    """The Job and its pods go (background propagation), as the controller deletes them."""
    state.remove("Job", rec.obj.meta.namespace, rec.obj.meta.name)
    for pod in state.pods(rec.obj.meta.namespace):
        if pod.obj.owner == ("Job", rec.obj.meta.name):
            pod.mark_deleting()
    state.events.normal("CronJob", cj.meta.namespace, cj.meta.name, "SuccessfulDelete",
                        f"Deleted job {rec.obj.meta.name}", source=SOURCE)


def _step(state: ClusterState, rec: Record, owned: list[Record], now: float) -> None:
    cj: CronJob = rec.obj
    t = track(state, rec)
    _history(state, cj, owned, t)
    if cj.suspend:
        return
    times = times_between(cj, t.last_schedule or rec.created, now)
    if not times:
        return
    if len(times) > MAX_MISSED:
        state.events.warn("CronJob", cj.meta.namespace, cj.meta.name, "TooManyMissedTimes",
                          "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check "
                          "clock skew", source=SOURCE)
        times = [croniter(cj.schedule, datetime.datetime.fromtimestamp(now + 1, _zone(cj))).get_prev(float)]
    scheduled = times[-1]
    if cj.starting_deadline is not None and now - scheduled > cj.starting_deadline:
        t.last_schedule = scheduled  # missed for good
        state.events.warn("CronJob", cj.meta.namespace, cj.meta.name, "MissSchedule",
                          f"Missed scheduled time to start a job: {datetime.datetime.fromtimestamp(scheduled, _zone(cj))}",
                          source=SOURCE)
        return
    active = [j for j in owned if not _finished(state, j) and state.get("Job", j.obj.meta.namespace, j.obj.meta.name)]
    if active and cj.concurrency == "Forbid":
        return  # counted as missed: it runs when they end, if still within the deadline
    if active and cj.concurrency == "Replace":
        for j in active:
            _delete_job(state, cj, j)
    name = job_name(cj, scheduled)
    if state.get("Job", cj.meta.namespace, name) is None:
        stamp = datetime.datetime.fromtimestamp(scheduled, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta = ObjectMeta(name, cj.meta.namespace, dict(cj.job_labels), {**cj.job_annotations, SCHEDULED: stamp})
        job: Job = replace(cj.job, meta=meta, owner=("CronJob", cj.meta.name))
        state.put("Job", job)
        state.events.normal("CronJob", cj.meta.namespace, cj.meta.name, "SuccessfulCreate", f"Created job {name}",
                            source=SOURCE)
    t.last_schedule = scheduled


def reconcile(state: ClusterState, children: dict[tuple[str, str, str], list[Record]],
              now: float | None = None) -> None:
    """Every CronJob one step at ``now`` (the clock by default); ``children``: objects by (owner
    kind, namespace, owner name)."""
    now = time.time() if now is None else now
    live = set()
    for rec in state.list("CronJob"):
        live.add((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid))
        if not rec.deleting:
            _step(state, rec, children.get(("CronJob", rec.obj.meta.namespace, rec.obj.meta.name), []), now)
    for key in [k for k in state.cronjobs if k not in live]:
        del state.cronjobs[key]


def status(state: ClusterState, rec: Record, owned: list[Record], stamp) -> dict:
    """``active`` (references to its running Jobs), ``lastScheduleTime``, ``lastSuccessfulTime``."""
    t = state.cronjobs.get((rec.obj.meta.namespace, rec.obj.meta.name, rec.uid)) or Track()
    out: dict = {}
    active = [j for j in owned if not _finished(state, j)]
    if active:
        out["active"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": j.obj.meta.name,
                          "namespace": j.obj.meta.namespace, "uid": j.uid, "resourceVersion": str(j.id)}
                         for j in sorted(active, key=lambda j: j.obj.meta.name)]
    if t.last_schedule:
        out["lastScheduleTime"] = stamp(t.last_schedule)
    if t.last_success:
        out["lastSuccessfulTime"] = stamp(t.last_success)
    return out
