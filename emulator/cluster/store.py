"""The cluster's object store: desired objects plus the status the kubelet reports.

One ``ClusterState`` per running cluster, owned by the manager process and passed explicitly to
the controllers (no globals). Objects are frozen model objects; status is mutable and lives
beside them in records. ``uid`` and ``creation`` mimic the API server's metadata.
"""
from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from emulator.cluster.events import Events
from emulator.cluster.ids import DataplaneIds
from emulator.cluster.services import Allocations, kubernetes_endpoints, kubernetes_service
from emulator.model.cluster import ClusterConfig
from emulator.model.naming import Scope
from emulator.model.calico import REFLECTOR_PEER, RR_ANNOTATION, RR_CLUSTER_ID, RR_LABEL, IPPool, Pool, tunnel_handle
from emulator.model.calicobgp import DEFAULT_CONFIGURATION, BGPConfiguration, BGPPeer
from emulator.model.calicoipam import CalicoIPAM
from emulator.model.ipam import NodeIPAM
from emulator.model.node import Node
from emulator.model.meta import RBAC_KINDS, Namespace, ObjectMeta
from emulator.model import podadmission, rbacdefaults, rbacsystem
from emulator.model.pod import Pod


@dataclass
class ContainerStatus:
    name: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    restart_count: int = 0
    started_at: float = 0.0
    exit_code: int | None = None
    pid: int | None = None
    next_start: float = 0.0  # back-off: not before this time
    ready: bool = False  # running, and its readiness probe (if any) passes
    finished_at: float = 0.0
    create_failures: int = 0  # consecutive failures to start (CreateContainerError), for back-off
    backing_off: bool = False  # terminated, waiting for its restart (kubectl: CrashLoopBackOff)
    last_state: tuple | None = None  # (reason, exit code, started, finished) of the previous run
    log_kept: float = 0.0  # started_at of the run whose log the kubelet kept as the previous one


@dataclass
class PodStatus:
    phase: str = "Pending"
    node: str = ""
    ip: str = ""
    reason: str = ""
    message: str = ""
    start_time: float = 0.0
    scheduled_at: float = 0.0
    containers: dict[str, ContainerStatus] = field(default_factory=dict)
    # ran to completion: its sandbox is gone and its address returned (``ip`` still says which it had)
    released: bool = False
    ready_since: float = 0.0  # when it last became ready, as the kubelet saw it (0: not ready)
    # its node's kubelet stopped posting status: the node lifecycle controller marked it not ready
    node_lost: bool = False

    @property
    def containers_ready(self) -> bool:
        return self.phase == "Running" and bool(self.containers) and all(
            c.state == "running" and c.ready for c in self.containers.values())

    @property
    def ready(self) -> bool:
        return not self.node_lost and self.containers_ready

    def available(self, min_ready: int, now: float) -> bool:
        """Ready for ``min_ready`` seconds (minReadySeconds), as the controllers count available pods
        (the kubelet times readiness in the pass that sees it: an untimed ready pod counts as ready long)."""
        return self.ready and (min_ready <= 0 or not self.ready_since or now - self.ready_since >= min_ready)


@dataclass
class Record:
    """A stored object with its API-server metadata."""

    obj: Any
    uid: str
    created: float
    id: int  # small integer that names the object in OpenFlow cookies (0: an RBAC object, in none)
    status: PodStatus | None = None
    deleting: bool = False
    deletion_time: float = 0.0  # when deletion was asked (the pod's deletionTimestamp)
    grace: int | None = None  # the delete's gracePeriodSeconds, when it named one (else the pod's own)
    finalizers: tuple[str, ...] = ()  # foregroundDeletion while an owner waits for its dependents

    def mark_deleting(self, grace: int | None = None) -> None:
        """The pod is Terminating; a later delete may shorten its grace period, never lengthen it
        (as the API server allows)."""
        if not self.deleting:
            self.deleting, self.deletion_time = True, time.time()
            self.grace = grace
        elif grace is not None and (self.grace is None or grace < self.grace):
            self.grace = grace


@dataclass
class ClusterState:
    config: ClusterConfig
    records: dict[tuple[str, str, str], Record] = field(default_factory=dict)  # kind, ns, name
    ipam: dict[str, Any] = field(default_factory=dict)  # node -> NodeIPAM, or (calico) the shared IPAM's NodeAddresses
    next_id: int = 1
    generation: int = 0  # bumped whenever something the data plane depends on changes
    rng: random.Random = field(default_factory=random.Random)
    started: float = field(default_factory=time.time)
    alloc: Allocations | None = None
    scope: Scope | None = None  # whose kernel names and numbers; slot 0 unless up allocated another
    ids: DataplaneIds = field(default_factory=DataplaneIds)
    events: Events = field(default_factory=Events)
    cordoned: set[str] = field(default_factory=set)  # nodes marked unschedulable (cluster.nodes)
    stopped: dict[str, float] = field(default_factory=dict)  # node -> when its kubelet stopped (k8semu node stop)
    unknown: dict[str, float] = field(default_factory=dict)  # node -> when it was marked Unknown and tainted
    deployments: dict = field(default_factory=dict)  # (namespace, name) -> deploystatus.Tracked
    root_ca: str = ""  # the API server's CA (PEM), published in every namespace as kube-root-ca.crt
    rendered: dict = field(default_factory=dict)  # pod uid -> (object, what its rendering shows, rendering)
    workloads: dict = field(default_factory=dict)  # (kind, ns, name) -> revisions.History of a StatefulSet/DaemonSet
    jobs: dict = field(default_factory=dict)  # (ns, name, uid) -> jobs.Track
    cronjobs: dict = field(default_factory=dict)  # (ns, name, uid) -> cronjobs.Track
    static_pods: bool = False  # keep kubeadm's control-plane mirror pods (staticpods.py): set by the manager
    available_checked: float = 0.0  # when deploystatus.due last looked for pods becoming available
    policy: Any = None  # cluster.rbac.Policy of the current RBAC objects; None after any of them changes
    bgp_view: tuple | None = None  # cni: calico: (the BGP objects it was made of, model.calicobgp.BGPView)
    # what kubectl label/annotate wrote on the nodes: node -> its labels beyond the kubelet's own
    # (the spec's until then), node -> the annotations that are not a CNI's (cluster.nodes.set_metadata)
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    node_annotations: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the records of each kind, in the order of ``records``: listing a kind costs that kind
        self.kinds: dict[str, dict[tuple[str, str], Record]] = {}
        if self.scope is None:
            self.scope = Scope(self.config.name)
        # cni: calico: one IPAM of /26 blocks for every node (model.calicoipam), else a range per node
        self.calico_ipam = CalicoIPAM(self.config.calico.pools, self.node_labels_of) if self.config.calico is not None \
            else None
        if self.config.calico is not None:  # what calico-node writes at its first start
            for pool in self.config.calico.pools:
                self.put("IPPool", IPPool(ObjectMeta(pool.name), pool))
            bgp = self.config.calico.bgp
            for name in bgp.route_reflectors:  # what calicoctl writes on a reflector's Node
                self.node_annotations[name] = {RR_ANNOTATION: RR_CLUSTER_ID}
            self.put("BGPConfiguration", BGPConfiguration(ObjectMeta(DEFAULT_CONFIGURATION), bgp.as_number, bgp.mesh,
                                                          "Info"))
            if not bgp.mesh:  # Calico's docs' peering with the reflectors (labelled route-reflector=true)
                self.put("BGPPeer", BGPPeer(ObjectMeta(REFLECTOR_PEER), node_selector="all()",
                                            peer_selector=f"{RR_LABEL} == 'true'"))
        for node in self.config.nodes:
            self.ipam.setdefault(node.name, self.calico_ipam.for_node(node.name) if self.calico_ipam is not None
                                 else NodeIPAM(node.pod_cidr))
        if self.calico_ipam is not None and self.config.calico.vxlan:  # calico-node's first act: its tunnel address
            for node in self.config.nodes:
                self.calico_ipam.allocate(node.name, tunnel_handle(node.name), use="Tunnel")
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.put("Namespace", Namespace(ObjectMeta(ns)))
        self.alloc = Allocations(self.config.services.subnet, self.config.lb_pool)
        svc = kubernetes_service()
        allocation, _ = self.alloc.allocate(svc, self.rng)
        self.alloc.commit(svc.key, allocation)
        self.put("Service", svc)
        self.put("Endpoints", kubernetes_endpoints(self.config))
        for role in rbacdefaults.cluster_roles():
            self.put("ClusterRole", role)
        for binding in rbacdefaults.cluster_role_bindings():
            self.put("ClusterRoleBinding", binding)
        # the components' own identities: kube-apiserver's and kubeadm's roles, the controllers'
        # ServiceAccounts, and those of the add-ons and the CNI agent that run here
        seeded = (rbacsystem.cluster_roles() + rbacsystem.cluster_role_bindings() + rbacsystem.namespace_objects()
                  + rbacsystem.kubeadm_objects() + rbacsystem.controller_accounts())
        for obj in seeded + rbacsystem.identities(self.config):
            self.put(type(obj).__name__, obj, off_plane=True)

    def put(self, kind: str, obj: Any, off_plane: bool = False) -> Record:
        """Create or replace an object; replacing keeps uid, creation time and status. A pod
        goes through the API server's admission plugins (their fields added) on its way in.
        ``off_plane``: an object the data plane never sees made at start (the components'
        identities), which takes neither an id nor a draw of the seeded random generator, so
        what the data plane is given does not depend on how many such objects there are."""
        if kind == "Pod":
            obj = self.admit_pod(obj)
        elif kind in RBAC_KINDS:
            self.policy = None
        key = (kind, obj.meta.namespace, obj.meta.name)
        old = self.records.get(key)
        if old:
            old.obj = obj
            self._pools_changed(kind)
            return old
        if kind in RBAC_KINDS or off_plane:  # never on the data plane: no id, and the seeded rng is left to it
            rec = Record(obj, str(uuid.uuid4()), time.time(), 0)
        else:
            rec = Record(obj, str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), time.time(),
                         self.next_id, PodStatus() if kind == "Pod" else None)
            self.next_id += 1
        self.records[key] = rec
        self.kinds.setdefault(kind, {})[(obj.meta.namespace, obj.meta.name)] = rec
        self._pools_changed(kind)
        return rec

    def current_nodes(self) -> list[Node]:
        """The spec's nodes with the labels kubectl last wrote on them (``kubectl label node``)."""
        return [replace(n, labels=self.node_labels[n.name]) if n.name in self.node_labels else n
                for n in self.config.nodes]

    def node_labels_of(self, name: str) -> dict[str, str]:
        """Every label the node shows (the kubelet's and the spec's, or what kubectl wrote)."""
        node = self.config.node(name)
        return (replace(node, labels=self.node_labels[name]) if name in self.node_labels else node).all_labels()

    def calico_pools(self) -> tuple[Pool, ...]:
        """The IP pools as the IPPool objects say now, the oldest first (the spec's, in its order)."""
        return tuple(r.obj.pool for r in self.list("IPPool"))

    def _pools_changed(self, kind: str) -> None:
        """An IPPool was written or deleted: Calico's IPAM takes the pools as they are now."""
        if kind == "IPPool" and self.calico_ipam is not None:
            self.calico_ipam.set_pools(self.calico_pools())

    def admit_pod(self, pod: Pod) -> Pod:
        """``pod`` through the admission plugins (model/podadmission.py), with what its
        ServiceAccount says of mounting tokens."""
        account = self.get("ServiceAccount", pod.meta.namespace, podadmission.account_name(pod.spec.raw))
        return podadmission.admit(pod, getattr(account.obj, "automount", None) if account else None)

    def get(self, kind: str, namespace: str, name: str) -> Record | None:
        return self.records.get((kind, namespace, name))

    def remove(self, kind: str, namespace: str, name: str) -> Record | None:
        if kind in RBAC_KINDS:
            self.policy = None
        self.kinds.get(kind, {}).pop((namespace, name), None)
        rec = self.records.pop((kind, namespace, name), None)
        self._pools_changed(kind)
        return rec

    def list(self, kind: str, namespace: str | None = None) -> list[Record]:
        of_kind = self.kinds.get(kind, {})
        if namespace is None:
            return list(of_kind.values())
        return [r for (ns, _), r in of_kind.items() if ns == namespace]

    def pods(self, namespace: str | None = None) -> list[Record]:
        return self.list("Pod", namespace)

    def pod_load(self) -> dict[str, int]:
        """Pods per node, as the scheduler spreads them: not the control plane's mirror pods,
        which the kubelet places (and which on a kubeadm cluster were there before any
        workload: coredns still lands on the control-plane node it tolerates)."""
        load: dict[str, int] = {}
        for rec in self.pods():
            if rec.status and rec.status.node and spreads(rec):
                load[rec.status.node] = load.get(rec.status.node, 0) + 1
        return load

    def namespaces(self) -> list[str]:
        return [r.obj.meta.name for r in self.list("Namespace")]

    def find_pod(self, name: str, namespace: str | None) -> Record | None:
        """A pod by name; without a namespace, ``default`` first, then a unique match anywhere."""
        if namespace:
            return self.get("Pod", namespace, name)
        rec = self.get("Pod", "default", name)
        if rec:
            return rec
        matches = [r for r in self.pods() if r.obj.meta.name == name]
        return matches[0] if len(matches) == 1 else None


def spreads(rec: Record) -> bool:
    """The pod counts in the scheduler's spreading: not a mirror pod (owned by its Node)."""
    return not (rec.obj.owner and rec.obj.owner[0] == "Node")


def pod_of(rec: Record) -> Pod:
    return rec.obj
