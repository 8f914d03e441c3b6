"""policy/v1 PodDisruptionBudget and the disruption controller's arithmetic.

A budget selects pods of its namespace and says how many must stay healthy (``minAvailable``)
or may be down (``maxUnavailable``), as a count or a percentage of the pods expected. The
Eviction API lets a pod go only while the budget allows a disruption. Percentages round up, as
the disruption controller's ``GetScaledValueFromIntOrPercent(..., roundUp=true)`` does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta
from emulator.model.selectors import LabelSelector


@dataclass(frozen=True)
class PodDisruptionBudget:
    meta: ObjectMeta
    selector: LabelSelector | None  # None selects nothing (an empty selector selects every pod)
    min_available: int | str | None = None  # a count or "N%"
    max_unavailable: int | str | None = None
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Budget:
    """A budget's status: what ``kubectl get pdb`` shows and what eviction checks."""
    expected: int
    current_healthy: int
    desired_healthy: int

    @property
    def disruptions_allowed(self) -> int:
        return max(0, self.current_healthy - self.desired_healthy)


def scaled(value: int | str, total: int) -> int:
    """A count, or a percentage of ``total`` rounded up."""
    if isinstance(value, str):
        return math.ceil(int(value.rstrip("%")) * total / 100)
    return value


def budget(pdb: PodDisruptionBudget, expected: int, healthy: int) -> Budget:
    if pdb.max_unavailable is not None:
        desired = max(0, expected - scaled(pdb.max_unavailable, expected))
    else:
        desired = scaled(pdb.min_available if pdb.min_available is not None else 1, expected)
    return Budget(expected, healthy, desired)
