"""A pod's volumes and its containers' volumeMounts, as the kubelet's volume plugins see them.

Emulated: ``emptyDir`` (a folder of the pod's, in memory: the run directory is a tmpfs, so
``medium: Memory`` changes nothing), ``configMap``, ``secret``, ``downwardAPI`` and ``projected``
(configMap, secret, downwardAPI and serviceAccountToken sources). Other volume types are
Kubernetes-valid and accepted with a warning: a pod never sees this machine's files or disks, so
``hostPath``, ``persistentVolumeClaim`` and the rest are mounted as an empty folder of the pod's
(``emulated = False``; ``k8semu describe pod`` says so).
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODE = 0o644  # the API server's default for configMap, secret, downwardAPI and projected
EMPTY_DIR_MODE = 0o777  # the kubelet makes an emptyDir world-writable
DOWNWARD_FIELDS = ("metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels",
                   "metadata.annotations")  # validDownwardAPIFieldPathExpressions (plus ['key'] forms)
RESOURCE_FIELDS = ("limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu",
                   "requests.memory", "requests.ephemeral-storage")
# what a volume's files come from: a projection's kinds (the keys are the API's field names)
SOURCE_KINDS = {"configMap": "ConfigMap", "secret": "Secret", "downwardAPI": "DownwardAPI",
                "serviceAccountToken": "ServiceAccountToken"}


@dataclass(frozen=True)
class KeyFile:
    """``items[]`` of a configMap or secret: one key written at ``path`` (relative, checked)."""
    key: str
    path: str
    mode: int | None = None


@dataclass(frozen=True)
class FieldFile:
    """``items[]`` of a downwardAPI volume: one field of the pod (``field_path``) or one
    resource of a container (``resource``, ``container``, ``divisor``) written at ``path``."""
    path: str
    field_path: str = ""
    resource: str = ""
    container: str = ""
    divisor: str = "1"
    mode: int | None = None


@dataclass(frozen=True)
class Projection:
    """One source of a volume's files: a ConfigMap, a Secret, the Downward API or a
    ServiceAccount token (``kind`` is one of SOURCE_KINDS' values)."""
    kind: str
    name: str = ""  # ConfigMap or Secret name
    items: tuple[KeyFile, ...] = ()  # none: every key, each at its own name
    optional: bool = False
    fields: tuple[FieldFile, ...] = ()  # DownwardAPI
    path: str = ""  # ServiceAccountToken: the file
    audience: str = ""
    expiration: int = 3600


@dataclass(frozen=True)
class Volume:
    name: str
    type: str  # the API's field name: emptyDir, configMap, secret, downwardAPI, projected, hostPath, ...
    sources: tuple[Projection, ...] = ()  # none for emptyDir and the types that are not emulated
    default_mode: int = DEFAULT_MODE
    medium: str = ""  # emptyDir: "" or Memory

    @property
    def emulated(self) -> bool:
        return self.type in ("emptyDir", "projected", *SOURCE_KINDS)

    @property
    def writable(self) -> bool:
        """The kubelet mounts configMap, secret, downwardAPI and projected volumes read-only."""
        return self.type not in ("projected", *SOURCE_KINDS)


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str  # absolute, normalised (checked by the spec layer)
    sub_path: str = ""  # relative, no ``..``
    read_only: bool = False
