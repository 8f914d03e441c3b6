"""ObjectMeta and Namespace: what every Kubernetes object carries."""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import SourceRef

# the kinds stored without a namespace (Nodes come from the cluster spec, not from manifests)
CLUSTER_SCOPED = frozenset({"Namespace", "IngressClass", "ClusterRole", "ClusterRoleBinding", "IPPool",
                            "BGPConfiguration", "BGPPeer"})
RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


@dataclass(frozen=True)
class ObjectMeta:
    name: str
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Namespace:
    meta: ObjectMeta
    source: SourceRef | None = field(default=None, compare=False)

    def labels(self) -> dict[str, str]:
        """Kubernetes adds ``kubernetes.io/metadata.name`` to every namespace."""
        return {**self.meta.labels, "kubernetes.io/metadata.name": self.meta.name}
