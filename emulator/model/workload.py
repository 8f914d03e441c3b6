"""Deployment and ReplicaSet: the controllers' desired state for sets of identical pods."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta
from emulator.model.pod import PodTemplate
from emulator.model.selectors import LabelSelector


@dataclass(frozen=True)
class ReplicaSet:
    meta: ObjectMeta
    replicas: int
    selector: LabelSelector
    template: PodTemplate
    source: SourceRef | None = field(default=None, compare=False)
    owner: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"


@dataclass(frozen=True)
class Deployment:
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

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"
