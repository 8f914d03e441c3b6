"""v1 ConfigMap and ServiceAccount: stored and served as the API server stores them. Pods consume
ConfigMaps as environment variables (model/podfiles.py) and as volumes (model/projection.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta


@dataclass(frozen=True)
class ConfigMap:
    meta: ObjectMeta
    data: dict[str, str] = field(default_factory=dict)
    binary_data: dict[str, str] = field(default_factory=dict)  # base64, as in the manifest
    immutable: bool = False
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ServiceAccount:
    """v1 ServiceAccount: stored and served; every namespace has ``default`` (the service-account
    controller's). Tokens are bound to it by name (emulator/model/satoken.py)."""

    meta: ObjectMeta
    automount: bool | None = None  # automountServiceAccountToken
    source: SourceRef | None = field(default=None, compare=False)
