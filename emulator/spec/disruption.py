"""PodDisruptionBudget manifests -> model, refusing what the API server refuses."""
from __future__ import annotations

import re

from emulator.model.disruption import PodDisruptionBudget
from emulator.model.meta import ObjectMeta
from emulator.spec import labels
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader

PERCENT = re.compile(r"^(0|[1-9][0-9]*)%$")


def int_or_percent(r: Reader, path: PathKey, at_most_100: bool = True) -> int | str | None:
    """An IntOrString count: a non-negative integer or ``N%`` (at most 100% unless a surge)."""
    value = r.get(path)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            r.fail(path, f"Invalid value: {value}: must be greater than or equal to 0")
            return None
        return value
    if isinstance(value, str) and PERCENT.match(value) and (not at_most_100 or int(value[:-1]) <= 100):
        return value
    r.fail(path, f"Invalid value: {value!r}: must be an integer or a percentage"
                 + (" between 0% and 100%" if at_most_100 else ""))
    return None


def parse_pod_disruption_budget(r: Reader, meta: ObjectMeta, source) -> PodDisruptionBudget:
    r.mapping(("spec",), {"selector", "minAvailable", "maxUnavailable"}, {"unhealthyPodEvictionPolicy"})
    minimum = int_or_percent(r, ("spec", "minAvailable"))
    maximum = int_or_percent(r, ("spec", "maxUnavailable"))
    if r.get(("spec", "minAvailable")) is not None and r.get(("spec", "maxUnavailable")) is not None:
        r.fail(("spec",), "minAvailable and maxUnavailable cannot be both set")
    return PodDisruptionBudget(meta, labels.selector(r, ("spec", "selector")), minimum, maximum, source)
