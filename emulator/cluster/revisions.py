"""Revisions of a StatefulSet's or DaemonSet's template, standing in for ControllerRevisions
(not served): each revision's template is kept under its ``controller-revision-hash``, so a pod
that must come back at an older revision (below a StatefulSet's partition) comes back as it was."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.cluster.store import ClusterState, Record
from emulator.model.pod import PodTemplate

REVISION_LABEL = "controller-revision-hash"


@dataclass
class History:
    """Templates by revision label, oldest first, and the revision the status calls current."""
    templates: dict[str, PodTemplate] = field(default_factory=dict)
    current: str = ""


def history(state: ClusterState, kind: str, namespace: str, name: str, update: str, template: PodTemplate) -> History:
    """The workload's history with its current template recorded as revision ``update``."""
    hist = state.workloads.setdefault((kind, namespace, name), History())
    if update not in hist.templates:
        hist.templates[update] = template
    if not hist.current:
        hist.current = update
    return hist


def trim(hist: History, pods: list[Record], update: str, limit: int) -> None:
    """Forget the revisions no pod uses beyond ``limit`` (revisionHistoryLimit), oldest first."""
    used = {p.obj.meta.labels.get(REVISION_LABEL) for p in pods} | {update, hist.current}
    spare = [r for r in hist.templates if r not in used]
    for rev in spare[:max(0, len(spare) - limit)]:
        del hist.templates[rev]


def forget(state: ClusterState, kinds: tuple[str, ...]) -> None:
    """Drop the histories of workloads that no longer exist."""
    for key in [k for k in state.workloads if k[0] in kinds and state.get(*k) is None]:
        del state.workloads[key]
