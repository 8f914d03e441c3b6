"""Pod, its containers and the pod template that workloads stamp pods from.

The typed fields are what k8semu acts on; ``raw_spec`` keeps the manifest's spec as written so
``get pod -o yaml`` can print the object the way the API server would echo it back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta
from emulator.model.volume import FieldFile, Volume, VolumeMount


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    name: str = ""
    protocol: str = "TCP"
    host_port: int = 0  # 0: none; else the node forwards hostIP:hostPort here (the portmap plugin)
    host_ip: str = ""  # "": the node's address


@dataclass(frozen=True)
class KeyRef:
    """A ConfigMap's or Secret's data as environment: one key (``valueFrom.configMapKeyRef``,
    ``secretKeyRef``) or, with no key, every key under ``prefix`` (an ``envFrom`` entry)."""
    kind: str  # ConfigMap | Secret
    name: str
    key: str = ""
    optional: bool = False
    prefix: str = ""


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str = ""
    field_path: str = ""  # valueFrom.fieldRef.fieldPath
    ref: KeyRef | None = None  # valueFrom.configMapKeyRef / secretKeyRef
    resource: FieldFile | None = None  # valueFrom.resourceFieldRef (its path unused)


@dataclass(frozen=True)
class Probe:
    """readinessProbe / livenessProbe: httpGet, tcpSocket or exec, with kubelet's timings."""
    action: str  # httpGet | tcpSocket | exec
    port: int | str = 0
    path: str = "/"
    scheme: str = "HTTP"
    command: tuple[str, ...] = ()
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    seconds: int = 0  # a preStop ``sleep`` action


@dataclass(frozen=True)
class Resources:
    """``resources``: what the sandbox enforces with cgroups (None: unlimited / unset)."""
    cpu_limit: int | None = None  # millicores
    memory_limit: int | None = None  # bytes
    cpu_request: int | None = None
    memory_request: int | None = None

    @property
    def qos_class(self) -> str:
        """Guaranteed, Burstable or BestEffort, as the kubelet classifies a container."""
        if self.cpu_limit is None and self.memory_limit is None and self.cpu_request is None \
                and self.memory_request is None:
            return "BestEffort"
        if self.cpu_limit is not None and self.memory_limit is not None and \
                (self.cpu_request in (None, self.cpu_limit)) and (self.memory_request in (None, self.memory_limit)):
            return "Guaranteed"
        return "Burstable"


# containerd's default capabilities: what a container gets unless its securityContext says more
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")
# what a pod may add without the cluster allowing privileged pods: the defaults (Pod Security's
# baseline list) and the network administration a networking course uses inside a pod
ALLOWED_ADDITIONS = frozenset(DEFAULT_CAPABILITIES) | {"NET_ADMIN", "NET_BROADCAST"}


@dataclass(frozen=True)
class SecurityContext:
    """The parts of a (pod or container) securityContext that the sandbox acts on."""
    privileged: bool = False
    add: tuple[str, ...] = ()  # capability names without CAP_, upper case
    drop: tuple[str, ...] = ()
    run_as_user: int | None = None
    run_as_group: int | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    working_dir: str = ""
    readiness: Probe | None = None
    liveness: Probe | None = None
    resources: Resources = field(default_factory=Resources)
    security: SecurityContext = field(default_factory=SecurityContext)
    pre_stop: Probe | None = None  # lifecycle.preStop: exec, httpGet or sleep (``Probe.seconds``)
    # kubelet keeps the container's stdin open for ``kubectl attach`` (``kubectl run -i``);
    # stdin_once: closed when the first attach ends; tty: a pseudo-terminal
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    env_from: tuple[KeyRef, ...] = ()
    mounts: tuple[VolumeMount, ...] = ()  # volumeMounts

    @property
    def attachable(self) -> bool:
        """The runtime keeps this container's streams for attach (a pipe or a terminal)."""
        return self.stdin or self.tty

    def port_number(self, port: int | str) -> int | None:
        if isinstance(port, int):
            return port
        return next((p.container_port for p in self.ports if p.name == port), None)


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    seconds: int | None = None  # tolerationSeconds: a NoExecute taint evicts the pod that long after it came

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != key:
            return False
        return self.operator == "Exists" or self.value == value


@dataclass(frozen=True)
class PodSpec:
    containers: tuple[Container, ...]
    node_name: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    restart_policy: str = "Always"
    hostname: str = ""
    subdomain: str = ""
    dns_policy: str = "ClusterFirst"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (ip, hostnames)
    security: SecurityContext = field(default_factory=SecurityContext)  # pod-level defaults
    termination_grace: int = 30  # seconds between SIGTERM and SIGKILL when the pod is deleted
    host_network: bool = False  # the node's network namespace: pod IP = node IP, no OVS port
    # k8semu's own data shown read-only to its system pods (the DNS snapshot to coredns): set only
    # by the add-ons' code, never read from a manifest
    system_mounts: tuple[str, ...] = ()
    volumes: tuple[Volume, ...] = ()

    @cached_property
    def host_ports(self) -> tuple[tuple[str, str, int, int], ...]:
        """(protocol, hostIP, hostPort, containerPort) of every port with a hostPort."""
        return tuple((p.protocol, p.host_ip, p.host_port, p.container_port)
                     for c in self.containers for p in c.ports if p.host_port)

    @property
    def qos_class(self) -> str:
        classes = {c.resources.qos_class for c in self.containers}
        if classes == {"Guaranteed"}:
            return "Guaranteed"
        return "BestEffort" if classes == {"BestEffort"} else "Burstable"


@dataclass(frozen=True)
class PodTemplate:
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: PodSpec
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Pod:
    meta: ObjectMeta
    spec: PodSpec
    source: SourceRef | None = field(default=None, compare=False)
    owner: tuple[str, str] | None = None  # (kind, name) of the controller, e.g. ReplicaSet

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"
