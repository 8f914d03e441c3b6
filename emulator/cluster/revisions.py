"""What the StatefulSet and DaemonSet controllers share: the revisions of their template, kept as
kube-controller-manager keeps ControllerRevisions (each template under its
``controller-revision-hash``, with a revision number: a new template gets the next number, and
one that comes back, a rollback, is renumbered to the next; served as ControllerRevision
objects, which ``kubectl rollout history|undo`` read; a pod that must come back at an older
revision, below a StatefulSet's partition, comes back as it was), and their claim on pods (adopting orphans that
match their selector, releasing pods that no longer do, as every controller's ClaimPods does)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from emulator.cluster.store import ClusterState, Record
from emulator.model.pod import Pod, PodTemplate
from emulator.model.selectors import LabelSelector

REVISION_LABEL = "controller-revision-hash"


@dataclass
class History:
    """Templates by revision label, oldest first, and the revision the status calls current;
    each revision's number, when it was made and the workload's annotations then (a
    ControllerRevision copies them: ``kubectl rollout history`` prints its change-cause)."""
    templates: dict[str, PodTemplate] = field(default_factory=dict)
    current: str = ""
    numbers: dict[str, int] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)


def history(state: ClusterState, kind: str, namespace: str, name: str, update: str, template: PodTemplate,
            annotations: dict[str, str] | None = None) -> History:
    """The workload's history with its current template recorded as revision ``update``, which
    holds the highest number (a template brought back is renumbered, as the controllers do)."""
    hist = state.workloads.setdefault((kind, namespace, name), History())
    if update not in hist.templates:
        hist.templates[update] = template
        hist.created[update] = time.time()
        hist.annotations[update] = dict(annotations or {})
    highest = max(hist.numbers.values(), default=0)
    if hist.numbers.get(update) != highest or not highest:
        hist.numbers[update] = highest + 1
    if not hist.current:
        hist.current = update
    return hist


def trim(hist: History, pods: list[Record], update: str, limit: int) -> None:
    """Forget the revisions no pod uses beyond ``limit`` (revisionHistoryLimit), oldest first."""
    used = {p.obj.meta.labels.get(REVISION_LABEL) for p in pods} | {update, hist.current}
    spare = [r for r in hist.templates if r not in used]
    for rev in spare[:max(0, len(spare) - limit)]:
        for table in (hist.templates, hist.numbers, hist.created, hist.annotations):
            table.pop(rev, None)


def forget(state: ClusterState, kinds: tuple[str, ...]) -> None:
    """Drop the histories of workloads that no longer exist."""
    for key in [k for k in state.workloads if k[0] in kinds and state.get(*k) is None]:
        del state.workloads[key]


def claim(state: ClusterState, owner: tuple[str, str], namespace: str, selector: LabelSelector,
          owned: list[Record], may_adopt: Callable[[Pod], bool]) -> list[Record]:
    """The pods the controller ``owner`` (kind, name) manages this pass: those it owns that its
    selector still matches, and pods without an owner that it matches and ``may_adopt`` accepts
    (left by ``kubectl delete --cascade=orphan``), which it now owns. A pod it owns whose labels
    no longer match is released: it loses its owner and stays, as a bare pod."""
    out = []
    for rec in owned:
        if rec.deleting or selector.matches(rec.obj.meta.labels):
            out.append(rec)
        else:
            state.put("Pod", replace(rec.obj, owner=None))
    for rec in state.pods(namespace):
        pod: Pod = rec.obj
        if pod.owner is None and not rec.deleting and selector.matches(pod.meta.labels) and may_adopt(pod):
            state.put("Pod", replace(pod, owner=owner))
            out.append(rec)
    return out


def each(state: ClusterState, kind: str, children: dict[tuple[str, str, str], list[Record]],
         revision: Callable[[Any], str], may_adopt: Callable[[Any, Pod], bool]
         ) -> Iterator[tuple[Any, History, str, list[Record]]]:
    """Each StatefulSet or DaemonSet (``kind``) to reconcile: (the object, its history with the
    current template recorded, its update revision, the pods it claims). One being deleted in
    the foreground is skipped: it makes no pods. ``children``: pods by (owner kind, namespace,
    owner name)."""
    for rec in state.list(kind):
        obj = rec.obj
        update = revision(obj)
        hist = history(state, kind, obj.meta.namespace, obj.meta.name, update, obj.template, obj.meta.annotations)
        if rec.deleting:
            continue
        pods = claim(state, (kind, obj.meta.name), obj.meta.namespace, obj.selector,
                     children.get((kind, obj.meta.namespace, obj.meta.name), []), lambda pod: may_adopt(obj, pod))
        yield obj, hist, update, pods
