"""StatefulSet, DaemonSet and Job specs: the fields beyond the pod template, checked as the API
server's apps and batch validation checks them (the template, and for the apps kinds the
selector and replicas, are read by ``manifests``, shared with Deployments)."""
from __future__ import annotations

import zoneinfo
from dataclasses import replace

from croniter import croniter

from emulator.model import validation
from emulator.model.meta import ObjectMeta
from emulator.model.pod import PodTemplate
from emulator.model.selectors import LabelSelector
from emulator.model.workload import CronJob, DaemonSet, Job, StatefulSet
from emulator.spec import kinds, labels
from emulator.spec.disruption import int_or_percent
from emulator.spec.reader import Reader

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
MAX_INDEXES = 100_000  # the API server's limit on an Indexed Job's completions and parallelism


def _one_of(r: Reader, path: tuple, default: str, allowed: tuple[str, ...]) -> str:
    value = r.string(path, default)
    if value not in allowed:
        r.fail(path, f'Unsupported value: "{value}": supported values: ' + ", ".join(f'"{a}"' for a in allowed))
        return default
    return value


def parse_statefulset(r: Reader, meta: ObjectMeta, replicas: int, selector: LabelSelector, template: PodTemplate,
                      source) -> StatefulSet:
    """``spec.serviceName`` (the governing headless Service: each pod's DNS subdomain),
    ``podManagementPolicy``, ``updateStrategy`` (RollingUpdate with a partition, or OnDelete),
    ``ordinals.start``. A StatefulSet's pods take ``<name>-<ordinal>`` as their hostname, so its
    name must be a DNS-1123 label short enough to leave room for the ordinal."""
    spec = ("spec",)
    if meta.name and not validation.is_dns1123_label(meta.name + "-0"):
        r.fail(("metadata", "name"), "a StatefulSet's pods are named and hostnamed '<name>-<ordinal>': "
               + (validation.check_dns1123_label(meta.name + "-0") or ""))
    service = r.string(spec + ("serviceName",), "",
                       check=lambda v: validation.check_dns1123_label(v) if v else None) or ""
    policy = _one_of(r, spec + ("podManagementPolicy",), "OrderedReady", ("OrderedReady", "Parallel"))
    strategy = spec + ("updateStrategy",)
    r.mapping(strategy, {"type", "rollingUpdate"})
    kind = _one_of(r, strategy + ("type",), "RollingUpdate", ("RollingUpdate", "OnDelete"))
    partition = 0
    if r.get(strategy + ("rollingUpdate",)) is not None:
        if kind != "RollingUpdate":
            r.fail(strategy + ("rollingUpdate",), "Forbidden: only allowed for updateStrategy 'RollingUpdate'")
        r.mapping(strategy + ("rollingUpdate",), {"partition"}, {"maxUnavailable"})
        partition = r.integer(strategy + ("rollingUpdate", "partition"), 0, 0, MAX_INT32)
    r.mapping(spec + ("ordinals",), {"start"})
    start = r.integer(spec + ("ordinals", "start"), 0, 0, MAX_INT32)
    history = r.integer(spec + ("revisionHistoryLimit",), 10, 0, MAX_INT32)
    return StatefulSet(meta, replicas, selector, template, source, service, policy, kind, partition or 0,
                       start or 0, 10 if history is None else history, _min_ready(r))


def _min_ready(r: Reader) -> int:
    return r.integer(("spec", "minReadySeconds"), 0, 0, MAX_INT32) or 0


def parse_daemonset(r: Reader, meta: ObjectMeta, selector: LabelSelector, template: PodTemplate,
                    source) -> DaemonSet:
    """``spec.updateStrategy``: RollingUpdate (maxUnavailable, default 1; maxSurge, default 0;
    not both 0) or OnDelete."""
    strategy = ("spec", "updateStrategy")
    r.mapping(strategy, {"type", "rollingUpdate"})
    kind = _one_of(r, strategy + ("type",), "RollingUpdate", ("RollingUpdate", "OnDelete"))
    rolling = strategy + ("rollingUpdate",)
    unavailable: int | str = 1
    surge: int | str = 0
    if r.get(rolling) is not None:
        if kind != "RollingUpdate":
            r.fail(rolling, "Forbidden: only allowed for updateStrategy 'RollingUpdate'")
        r.mapping(rolling, {"maxUnavailable", "maxSurge"})
        got_unavailable = int_or_percent(r, rolling + ("maxUnavailable",))
        got_surge = int_or_percent(r, rolling + ("maxSurge",))
        unavailable = 1 if got_unavailable is None else got_unavailable
        surge = 0 if got_surge is None else got_surge
        if str(unavailable).rstrip("%") == "0" and str(surge).rstrip("%") == "0":
            r.fail(rolling + ("maxUnavailable",), "Invalid value: 0: may not be 0 when `maxSurge` is 0")
    history = r.integer(("spec", "revisionHistoryLimit"), 10, 0, MAX_INT32)
    return DaemonSet(meta, selector, template, source, kind, unavailable, surge, 10 if history is None else history,
                     _min_ready(r))


# the labels the API server adds to a Job's template and selector (from its uid), and takes back
# here when a client sends them (a kubectl apply or patch of the object it read)
JOB_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid", "job-name")


def parse_job(r: Reader, meta: ObjectMeta, template: PodTemplate, source, spec: tuple = ("spec",)) -> Job:
    """A Job as the API server validates it: the template's restartPolicy OnFailure or Never,
    completions and parallelism defaulted together (both unset: one pod, once), the selector
    generated unless ``manualSelector`` (a client's copy of the generated one is accepted),
    NonIndexed or Indexed completion (Indexed needs completions, at most 100,000), an
    activeDeadlineSeconds above 0 and a ttlSecondsAfterFinished of 0 or more. ``spec``: where the JobSpec is
    (a CronJob's is under spec.jobTemplate.spec)."""
    policy = template.spec.restart_policy
    if policy not in ("OnFailure", "Never"):
        where = spec + ("template", "spec", "restartPolicy")
        r.fail(where, (f'Unsupported value: "{policy}": supported values: ' if r.get(where)
                       else "Required value: valid values: ") + '"OnFailure", "Never"')
    mode = r.string(spec + ("completionMode",), "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        r.fail(spec + ("completionMode",), f'Unsupported value: "{mode}": supported values: "NonIndexed", "Indexed"')
    indexed = mode == "Indexed"
    completions = r.integer(spec + ("completions",), None, 0, MAX_INDEXES if indexed else MAX_INT32)
    parallelism = r.integer(spec + ("parallelism",), None, 0, MAX_INDEXES if indexed else MAX_INT32)
    if indexed and completions is None:
        r.fail(spec + ("completions",), "Required value: when completion mode is Indexed")
    if completions is None and parallelism is None:
        completions = 1
    manual = r.typed(spec + ("manualSelector",), bool, False)
    selector = labels.selector(r, spec + ("selector",)) if r.get(spec + ("selector",)) is not None else None
    if manual:
        if selector is None or selector.empty:
            r.fail(spec + ("selector",), "Required value: with manualSelector the Job names its own selector")
        elif not selector.matches(template.labels):
            r.fail(spec + ("template", "metadata", "labels"), "`selector` does not match template `labels`")
    elif selector is not None and (selector.expressions or set(selector.match_labels) - set(JOB_LABELS)):
        r.fail(spec + ("selector",), "`selector` not auto-generated: it is made from the Job's uid "
                                     "(set manualSelector: true to choose it)")
    kept = {k: v for k, v in template.labels.items() if manual or k not in JOB_LABELS}
    return Job(meta, replace(template, labels=kept), source, completions,
               1 if parallelism is None else parallelism,
               r.integer(spec + ("backoffLimit",), 6, 0, MAX_INT32), bool(r.typed(spec + ("suspend",), bool, False)),
               selector if manual else None, indexed=indexed,
               active_deadline=r.integer(spec + ("activeDeadlineSeconds",), None, 1, MAX_INT64),
               ttl_after_finished=r.integer(spec + ("ttlSecondsAfterFinished",), None, 0, MAX_INT32))


# robfig/cron's descriptors, which kube-controller-manager's parser takes, as the five fields they mean
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
               "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MAX_CRONJOB_NAME = 52  # the API server's limit: a Job's name adds '-' and up to 10 digits


def check_schedule(text: str) -> str | None:
    """kube-apiserver's rule for spec.schedule: five cron fields (minute hour day-of-month month
    day-of-week, with names, ranges, steps) or a descriptor; TZ= belongs in spec.timeZone."""
    schedule = DESCRIPTORS.get(text.strip(), text)
    if "TZ" in schedule:
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if schedule.startswith("@"):
        return f"unparseable cron descriptor {text!r} (k8semu takes {', '.join(DESCRIPTORS)})"
    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        return f"unparseable schedule {text!r}: expected five fields: minute hour day-of-month month day-of-week"
    return None


def check_time_zone(name: str) -> str | None:
    """An IANA time zone name the machine's tz database holds (the API server's check)."""
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        return f"unknown time zone {name!r}"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r}"
    return None


def parse_cronjob(r: Reader, meta: ObjectMeta, job: Job, source) -> CronJob:
    """A CronJob: its schedule, time zone, concurrency policy, deadlines and history limits, and
    the jobTemplate (its JobSpec read by ``parse_job``)."""
    spec = ("spec",)
    if meta.name and len(meta.name) > MAX_CRONJOB_NAME:
        r.fail(("metadata", "name"), f"must be no more than {MAX_CRONJOB_NAME} characters")
    schedule = r.string(spec + ("schedule",), "", check=check_schedule) or ""
    zone = r.string(spec + ("timeZone",), "", check=lambda v: check_time_zone(v) if v else None) or ""
    concurrency = _one_of(r, spec + ("concurrencyPolicy",), "Allow", ("Allow", "Forbid", "Replace"))
    template = spec + ("jobTemplate", "metadata")
    r.mapping(template, kinds.META_SUPPORTED, kinds.META_KNOWN)  # kubectl create cronjob names it too
    return CronJob(meta, DESCRIPTORS.get(schedule.strip(), schedule), job,
                   labels.labels(r, template + ("labels",)), labels.labels(r, template + ("annotations",), False),
                   source, zone, concurrency, bool(r.typed(spec + ("suspend",), bool, False)),
                   r.integer(spec + ("startingDeadlineSeconds",), None, 0, 2**63 - 1),
                   r.integer(spec + ("successfulJobsHistoryLimit",), 3, 0, MAX_INT32),
                   r.integer(spec + ("failedJobsHistoryLimit",), 1, 0, MAX_INT32))


SPECS = {"StatefulSet": (kinds.STATEFULSET_SPEC_SUPPORTED, kinds.STATEFULSET_SPEC_KNOWN),
         "DaemonSet": (kinds.DAEMONSET_SPEC_SUPPORTED, kinds.DAEMONSET_SPEC_KNOWN),
         "Job": (kinds.JOB_SPEC_SUPPORTED, kinds.JOB_SPEC_KNOWN),
         "CronJob": (kinds.CRONJOB_SPEC_SUPPORTED, ())}
