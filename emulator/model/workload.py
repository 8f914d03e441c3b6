"""Deployment, ReplicaSet, StatefulSet, DaemonSet and Job: the controllers' desired state for
sets of pods made from one template."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta
from emulator.model.pod import PodTemplate
from emulator.model.selectors import LabelSelector


class Keyed:
    """``namespace/name``: how the controllers and the kubelet name an object of a namespace."""
    meta: ObjectMeta

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"


@dataclass(frozen=True)
class ReplicaSet(Keyed):
    meta: ObjectMeta
    replicas: int
    selector: LabelSelector
    template: PodTemplate
    source: SourceRef | None = field(default=None, compare=False)
    owner: tuple[str, str] | None = None
    min_ready: int = 0  # minReadySeconds: a pod is available once ready this long


@dataclass(frozen=True)
class Deployment(Keyed):
    meta: ObjectMeta
    replicas: int
    selector: LabelSelector
    template: PodTemplate
    source: SourceRef | None = field(default=None, compare=False)
    revision_history_limit: int = 10  # old ReplicaSets kept for rollout history/undo
    # spec.strategy: "RollingUpdate" (new pods up to max_surge above replicas, old ones down while
    # at most max_unavailable are not ready) or "Recreate" (every old pod gone first)
    strategy: str = "RollingUpdate"
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"
    min_ready: int = 0  # minReadySeconds: a pod is available once ready this long
    progress_deadline: int = 600  # progressDeadlineSeconds: no progress that long -> ProgressDeadlineExceeded


@dataclass(frozen=True)
class StatefulSet(Keyed):
    """Pods ``<name>-<ordinal>`` with stable names (and, through the governing Service named by
    ``service_name``, stable DNS names), started and stopped in order unless Parallel."""
    meta: ObjectMeta
    replicas: int
    selector: LabelSelector
    template: PodTemplate
    source: SourceRef | None = field(default=None, compare=False)
    service_name: str = ""
    pod_management: str = "OrderedReady"  # or "Parallel"
    update_strategy: str = "RollingUpdate"  # or "OnDelete"
    partition: int = 0  # ordinals below it keep the old template in a RollingUpdate
    ordinals_start: int = 0  # spec.ordinals.start
    revision_history_limit: int = 10
    min_ready: int = 0  # minReadySeconds: a pod is available once ready this long; ordered steps wait for it


@dataclass(frozen=True)
class DaemonSet(Keyed):
    """One pod on every node its template may run on (nodeSelector, taints it tolerates)."""
    meta: ObjectMeta
    selector: LabelSelector
    template: PodTemplate
    source: SourceRef | None = field(default=None, compare=False)
    update_strategy: str = "RollingUpdate"  # or "OnDelete"
    max_unavailable: int | str = 1
    max_surge: int | str = 0
    revision_history_limit: int = 10
    min_ready: int = 0  # minReadySeconds: a pod is available once ready this long; the rollout counts it so


@dataclass(frozen=True)
class Job(Keyed):
    """Pods run to completion: ``completions`` successes (None: the first success ends the work,
    a work queue), at most ``parallelism`` at once, the Job failed after more than
    ``backoff_limit`` failures. Its pods carry labels with the Job's uid, which the API adds to
    the template and the selector (not kept here: the uid is the store's)."""
    meta: ObjectMeta
    template: PodTemplate
    source: SourceRef | None = field(default=None, compare=False)
    completions: int | None = 1
    parallelism: int = 1
    backoff_limit: int = 6
    suspend: bool = False
    selector: LabelSelector | None = None  # set only with manualSelector: true
    owner: tuple[str, str] | None = None  # ("CronJob", name) for a Job a CronJob made
    indexed: bool = False  # completionMode Indexed: each of ``completions`` indexes succeeds once
    active_deadline: int | None = None  # activeDeadlineSeconds: Failed (DeadlineExceeded) once active longer
    ttl_after_finished: int | None = None  # ttlSecondsAfterFinished: deleted that long after it finished


@dataclass(frozen=True)
class CronJob(Keyed):
    """Jobs made from ``job`` (its labels and annotations from the jobTemplate's metadata) at the
    times ``schedule`` (five cron fields, in ``time_zone``, UTC by default) names."""
    meta: ObjectMeta
    schedule: str
    job: Job
    job_labels: dict[str, str] = field(default_factory=dict)
    job_annotations: dict[str, str] = field(default_factory=dict)
    source: SourceRef | None = field(default=None, compare=False)
    time_zone: str = ""
    concurrency: str = "Allow"  # Allow | Forbid | Replace
    suspend: bool = False
    starting_deadline: int | None = None
    successful_history: int = 3
    failed_history: int = 1


# kinds whose controllers own pods (a CronJob, Jobs) (the garbage collector follows them) and those with a scale
# subresource (kubectl scale): defined once, read by the controllers, the API and the CLI
POD_OWNERS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")
SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet")
