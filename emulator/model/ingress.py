"""networking.k8s.io/v1 Ingress and IngressClass, and v1 Secret (kept for TLS)."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta


@dataclass(frozen=True)
class Backend:
    service: str
    port: int | str  # number or the Service port's name


@dataclass(frozen=True)
class IngressPath:
    path: str
    path_type: str  # Exact | Prefix | ImplementationSpecific
    backend: Backend


@dataclass(frozen=True)
class IngressRule:
    host: str  # "" for any host
    paths: tuple[IngressPath, ...] = ()


@dataclass(frozen=True)
class Ingress:
    meta: ObjectMeta
    class_name: str = ""
    default_backend: Backend | None = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[tuple[tuple[str, ...], str], ...] = ()  # (hosts, secretName)
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class IngressClass:
    meta: ObjectMeta
    controller: str = "k8s.io/ingress-nginx"
    source: SourceRef | None = field(default=None, compare=False)

    @property
    def is_default(self) -> bool:
        return self.meta.annotations.get("ingressclass.kubernetes.io/is-default-class") == "true"


@dataclass(frozen=True)
class Secret:
    meta: ObjectMeta
    type: str = "Opaque"
    data: dict[str, str] = field(default_factory=dict)  # base64 values, as in the manifest
    source: SourceRef | None = field(default=None, compare=False)
