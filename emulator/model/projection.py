"""The files of a pod's configMap, secret, downwardAPI and projected volumes, computed as the
kubelet's volume plugins compute them (pkg/volume/configmap, secret, downwardapi, projected):
path -> (content, mode). Pure: the runtime writes them (runtime/volumes.py, the atomic writer)
and calls again when a ConfigMap, a Secret or the pod's labels change.

Messages are the kubelet's (``MountVolume.SetUp failed for volume ...``), so a pod waiting for
its ConfigMap says what a student would read in ``kubectl describe pod``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from emulator.errors import RenderError
from emulator.model import quantity
from emulator.model.pod import Pod, Resources
from emulator.model.volume import FieldFile, Projection, Volume

# (kind, name) -> every key's bytes (a Secret's decoded, a ConfigMap's data and binaryData), or None
Lookup = Callable[[str, str], "dict[str, bytes] | None"]
Files = dict[str, tuple[bytes, int]]


class MountError(RenderError):
    """A volume cannot be set up yet (its ConfigMap or Secret, or a key of it, is missing): the
    kubelet's FailedMount, retried until it appears."""


@dataclass(frozen=True)
class PodFacts:
    """What the Downward API can show of a pod besides its manifest."""
    uid: str
    capacity_millicores: int  # the node's, for a resource limit the container does not set
    capacity_bytes: int
    token: Callable[[str, int], str] | None = None  # (audience, seconds) -> a ServiceAccount token


def format_map(values: dict[str, str]) -> str:
    """fieldpath.FormatMap: ``key="value"`` lines, keys sorted, values quoted as Go's %q."""
    return "\n".join(f"{k}={json.dumps(values[k], ensure_ascii=False)}" for k in sorted(values))


def field_value(pod: Pod, facts: PodFacts, path: str) -> str:
    meta = pod.meta
    if path.startswith(("metadata.labels['", "metadata.annotations['")):
        base, key = path.split("['", 1)
        values = meta.labels if base == "metadata.labels" else meta.annotations
        return values.get(key[:-2], "")
    return {"metadata.name": meta.name, "metadata.namespace": meta.namespace, "metadata.uid": facts.uid,
            "metadata.labels": format_map(meta.labels), "metadata.annotations": format_map(meta.annotations)}[path]


def resource_value(pod: Pod, facts: PodFacts, item: FieldFile) -> str:
    """ExtractContainerResourceValue: the limit (or request), the node's capacity when a limit
    is not set, divided by the divisor and rounded up."""
    container = next((c for c in pod.spec.containers if c.name == item.container), None)
    res = container.resources if container is not None else Resources()  # (the spec layer names one)
    kind, what = item.resource.split(".", 1)
    if what == "cpu":
        value = (res.cpu_limit if kind == "limits" else res.cpu_request)
        value = Decimal(facts.capacity_millicores if value is None and kind == "limits" else (value or 0)) / 1000
    elif what == "memory":
        value = res.memory_limit if kind == "limits" else res.memory_request
        value = Decimal(facts.capacity_bytes if value is None and kind == "limits" else (value or 0))
    else:  # ephemeral-storage: k8semu gives no disk; the kubelet would report the node's
        value = Decimal(0)
    return str(math.ceil(value / quantity.parse(item.divisor)))


def _object_files(volume: Volume, source: Projection, lookup: Lookup) -> Files:
    data = lookup(source.kind, source.name)
    what = source.kind.lower()
    if data is None:
        if source.optional:
            return {}
        raise MountError(f'MountVolume.SetUp failed for volume "{volume.name}" : {what} "{source.name}" not found')
    if not source.items:
        return {key: (value, volume.default_mode) for key, value in data.items()}
    out: Files = {}
    for item in source.items:
        if item.key not in data:
            if source.optional:
                continue
            raise MountError(f'MountVolume.SetUp failed for volume "{volume.name}" : {what} references '
                             f"non-existent config key: {item.key}")
        out[item.path] = (data[item.key], volume.default_mode if item.mode is None else item.mode)
    return out


def volume_files(volume: Volume, pod: Pod, facts: PodFacts, lookup: Lookup) -> Files:
    """Every file of ``volume`` (a configMap, secret, downwardAPI or projected one).

    Raises:
        MountError: a ConfigMap or Secret, or one of its keys, is missing and not optional.
    """
    out: Files = {}
    for source in volume.sources:
        if source.kind in ("ConfigMap", "Secret"):
            out.update(_object_files(volume, source, lookup))
        elif source.kind == "DownwardAPI":
            for item in source.fields:
                text = field_value(pod, facts, item.field_path) if item.field_path else resource_value(pod, facts, item)
                out[item.path] = (text.encode(), volume.default_mode if item.mode is None else item.mode)
        elif source.kind == "ServiceAccountToken" and facts.token is not None:
            out[source.path] = (facts.token(source.audience, source.expiration).encode(), volume.default_mode)
    return out
