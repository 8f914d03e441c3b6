"""The reconcile loops, kube-controller-manager style, over a ``ClusterState``.

``reconcile`` is level-triggered and idempotent: it compares what is desired with what exists
and makes one step towards it (Deployment -> ReplicaSet named by the pod-template hash ->
pods with generated names -> scheduled on a node -> an address from that node's IPAM). The
kubelet half (sandboxes, processes, restarts) lives in ``emulator.runtime.kubelet`` and
reports back through pod status.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace

import yaml

from emulator.errors import AlreadyExistsError, ForbiddenError, NotFoundError, Problem, SpecError
from emulator.model import naming, scheduler, validation
from emulator.model.ipam import AddressesExhausted
from emulator.model.meta import CLUSTER_SCOPED, Namespace, ObjectMeta
from emulator.model.rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding
from emulator.model.pod import Pod, PodTemplate
from emulator.model.config import ConfigMap, ServiceAccount
from emulator.model.ingress import Ingress, IngressClass, Secret
from emulator.model.calico import IPPool
from emulator.model.calicobgp import BGPConfiguration, BGPPeer
from emulator.model.disruption import PodDisruptionBudget
from emulator.model.netpol import NetworkPolicy
from emulator.model.service import Endpoints, EndpointSlice, Service
from emulator.model.workload import (POD_OWNERS, SCALABLE, CronJob, DaemonSet, Deployment, Job, ReplicaSet,
                                     StatefulSet)
from emulator.cluster import (accounts, calicobgp, calicopools, cronjobs, daemonsets, deploystatus, jobs, nodelifecycle, nodes, rbac, revisions,
                              rollout, services, statefulsets, staticpods)
from emulator.cluster.admission import check_objects, check_pod_total
from emulator.cluster.apimeta import KUBE_VERSION
from emulator.spec.kinds import SUPPORTED_KINDS
from emulator.cluster.store import ClusterState, Record, spreads

KINDS = {Namespace: "Namespace", Pod: "Pod", Deployment: "Deployment", ReplicaSet: "ReplicaSet",
         Service: "Service", Endpoints: "Endpoints", EndpointSlice: "EndpointSlice",
         NetworkPolicy: "NetworkPolicy", Ingress: "Ingress", IngressClass: "IngressClass", Secret: "Secret",
         ConfigMap: "ConfigMap", ServiceAccount: "ServiceAccount", PodDisruptionBudget: "PodDisruptionBudget",
         StatefulSet: "StatefulSet", DaemonSet: "DaemonSet", Job: "Job", CronJob: "CronJob",
         Role: "Role", ClusterRole: "ClusterRole", RoleBinding: "RoleBinding", ClusterRoleBinding: "ClusterRoleBinding",
         IPPool: "IPPool", BGPConfiguration: "BGPConfiguration", BGPPeer: "BGPPeer"}
TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
KUBEADM_CONFIG = "kubeadm-config"
ROOT_CA = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
                       "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
                       "guaranteed across distributions of Kubernetes clusters.")


def revision_of(obj) -> int:
    """A ReplicaSet's revision among its Deployment's (the annotation kube-controller-manager sets)."""
    value = obj.meta.annotations.get(REVISION, "0")
    return int(value) if value.isdigit() else 0


GROUPS = {kind: api.rpartition("/")[0] for kind, api in SUPPORTED_KINDS.items() if "/" in api}  # kind -> API group


def kind_of(obj: object) -> str:
    return KINDS[type(obj)]


def resource(kind: str) -> str:
    """kubectl's name for a kind in messages: ``deployment.apps``, ``service``."""
    return kind.lower() + (f".{GROUPS[kind]}" if kind in GROUPS else "")


def apply(state: ClusterState, objects: list) -> list[str]:
    """``kubectl apply``: create or update each object; returns kubectl's one-line reports.

    Raises:
        SpecError: the batch is refused as a whole (unknown namespace, bad node, full node).
    """
    objects = [state.admit_pod(o) if isinstance(o, Pod) else o for o in objects]  # before it is compared
    load = state.pod_load()
    fresh = [o for o in objects if not state.get(kind_of(o), o.meta.namespace, o.meta.name)]
    pods = len([r for r in state.pods() if not r.deleting])
    problems = check_objects(state.config, fresh, state.namespaces(), load, pods, state.current_nodes())
    added = sum(o.replicas if kind_of(o) in SCALABLE else o.parallelism if isinstance(o, Job) else 1
                if isinstance(o, Pod) else len(state.config.nodes)
                for o in fresh if kind_of(o) in SCALABLE or isinstance(o, (Pod, DaemonSet, Job)))
    for o in objects:
        if kind_of(o) in SCALABLE and o not in fresh:
            old = state.get(kind_of(o), o.meta.namespace, o.meta.name).obj
            problems += check_pod_total(pods + added, o.replicas - old.replicas, o.source, "spec.replicas",
                                        f"{kind_of(o)} {o.meta.namespace}/{o.meta.name}")
    problems += [Problem(o.source, "data", f"ConfigMap {o.meta.namespace}/{o.meta.name}: field is immutable when "
                         "`immutable` is set") for o in objects if isinstance(o, ConfigMap) and o not in fresh
                 and _immutable_change(state.get("ConfigMap", o.meta.namespace, o.meta.name).obj, o)]
    problems += [Problem(o.source, "spec", f"Pod {o.key}: pod updates may not change fields "
                         "other than labels and annotations (delete and re-create it)")
                 for o in objects if isinstance(o, Pod) and o not in fresh
                 and _pod_spec_changed(state.get("Pod", o.meta.namespace, o.meta.name), o)]
    problems += [Problem(o.source, "spec", f"Job {o.key}: {why}") for o in objects if isinstance(o, Job)
                 and o not in fresh and (why := jobs.immutable_change(state.get("Job", o.meta.namespace, o.meta.name).obj, o))]
    allocations = {}
    trial = copy.deepcopy(state.alloc)
    for obj in objects:
        if isinstance(obj, Service):
            allocation, probs = trial.allocate(obj, state.rng)
            problems += probs
            if allocation:
                trial.commit(obj.key, allocation)
                allocations[obj.key] = allocation
    problems += rbac.refused_changes(state, objects, fresh)
    problems += calicopools.check(state, objects) + calicobgp.check(state, objects)
    refused = accounts.check(state, objects, fresh)  # one object (a client's create) is refused 403
    if refused and len(objects) == 1 and not problems:
        raise ForbiddenError(refused[0].message)
    if problems + refused:
        raise SpecError(problems + refused)
    for key, allocation in allocations.items():
        state.alloc.commit(key, allocation)
    lines = []
    for obj in sorted(objects, key=lambda o: not isinstance(o, Namespace)):
        kind = kind_of(obj)
        old = state.get(kind, obj.meta.namespace, obj.meta.name)
        if old is not None and getattr(old.obj, "owner", None) and getattr(obj, "owner", ()) is None:
            # the controller's reference is the server's to keep: a client writing the object back
            # (kubectl label pod, a patch) does not orphan it
            obj = replace(obj, owner=old.obj.owner)
        verb = "created" if old is None else ("unchanged" if old.obj == obj else "configured")
        state.put(kind, obj)
        lines.append(f"{resource(kind)}/{obj.meta.name} {verb}")
    reconcile(state)
    return lines


def create(state: ClusterState, objects: list) -> list[str]:
    """The API server's create: as ``apply``, refused when an object of that name exists.

    Raises:
        AlreadyExistsError: one of them exists (nothing is created).
        SpecError: as ``apply``.
    """
    for obj in objects:
        if state.get(kind_of(obj), obj.meta.namespace, obj.meta.name):
            raise AlreadyExistsError(f'{resource(kind_of(obj)).split(".")[0]}s "{obj.meta.name}" already exists')
    return apply(state, objects)


def _immutable_change(old: ConfigMap, new: ConfigMap) -> bool:
    """An immutable ConfigMap keeps its data and stays immutable (only its metadata may change)."""
    return old.immutable and (not new.immutable or (old.data, old.binary_data) != (new.data, new.binary_data))


PROPAGATION = ("Background", "Foreground", "Orphan")


def delete(state: ClusterState, kind: str, namespace: str, name: str, grace: int | None = None,
           propagation: str = "Background") -> str:
    """Delete an object and, as the garbage collector does, what it owns: with ``propagation``
    Orphan what it owns stays, without its owner; Foreground keeps the owner, with a
    deletionTimestamp and the foregroundDeletion finalizer, until everything it owns is gone
    (``finish_foreground``), so ``kubectl delete --cascade=foreground`` returns after the pods
    have terminated. ``grace``: a pod's gracePeriodSeconds for this delete.

    Raises:
        NotFoundError: no such object.
    """
    rec = state.get(kind, "" if kind in CLUSTER_SCOPED else namespace, name)
    if rec is None:
        raise NotFoundError(f'{kind.lower()}s "{name}" not found')
    if rec.finalizers:  # already waiting for its dependents: the API server changes nothing
        return f'{resource(kind)} "{name}" deleted'
    children = owned(state, kind, namespace, name) if kind in POD_OWNERS else []
    if propagation == "Foreground" and children:
        rec.mark_deleting(0)
        rec.finalizers = ("foregroundDeletion",)
        for child in children:
            delete(state, kind_of(child.obj), namespace, child.obj.meta.name, grace, "Foreground")
        reconcile(state)
        return f'{resource(kind)} "{name}" deleted'
    if propagation == "Orphan" and kind in POD_OWNERS:
        for child in owned(state, kind, namespace, name):
            state.put(kind_of(child.obj), replace(child.obj, owner=None))
    if kind == "Pod":
        rec.mark_deleting(grace)
    elif kind == "Service":
        state.remove(kind, namespace, name)
        state.alloc.release(f"{namespace}/{name}")
        for k in ("Endpoints", "EndpointSlice"):
            for r in state.list(k, namespace):
                if r.obj.managed and (r.obj.meta.name == name or
                                      r.obj.meta.labels.get(services.SERVICE_NAME_LABEL) == name):
                    state.remove(k, namespace, r.obj.meta.name)
    elif kind == "Namespace":
        state.remove(kind, "", name)  # first: nothing puts its default ServiceAccount back meanwhile
        for (k, ns, n) in list(state.records):
            if ns == name and (k, ns, n) in state.records:  # not already gone with its owner
                delete(state, k, ns, n)
    else:
        state.remove(kind, rec.obj.meta.namespace, name)
        for child in owned(state, kind, namespace, name):
            delete(state, kind_of(child.obj), namespace, child.obj.meta.name)
    reconcile(state)
    return f'{resource(kind)} "{name}" deleted'


def scale(state: ClusterState, kind: str, namespace: str, name: str, replicas: int) -> str:
    """``kubectl scale``.

    Raises:
        NotFoundError: no such Deployment, ReplicaSet or StatefulSet.
    """
    rec = state.get(kind, namespace, name)
    if rec is None:
        raise NotFoundError(f'{kind.lower()}s.apps "{name}" not found')
    if replicas < 0:
        raise SpecError([Problem(None, "--replicas", "must be non-negative")])
    problems = check_pod_total(len([r for r in state.pods() if not r.deleting]), replicas - rec.obj.replicas, None,
                               "--replicas", f"{kind} {namespace}/{name}")
    if problems:
        raise SpecError(problems)
    state.put(kind, replace(rec.obj, replicas=replicas))
    reconcile(state)
    return f"{kind.lower()}.apps/{name} scaled"


def owned(state: ClusterState, kind: str, namespace: str, name: str) -> list[Record]:
    return [r for r in state.records.values()
            if getattr(r.obj, "owner", None) == (kind, name) and r.obj.meta.namespace == namespace]


def by_owner(state: ClusterState) -> dict[tuple[str, str, str], list[Record]]:
    """(owner kind, namespace, owner name) -> what it owns, in one pass over the records. Why:
    ``owned`` per Deployment and per ReplicaSet made each controller pass O(owners x records),
    most of a write's time on a 1,000-pod cluster."""
    out: dict[tuple[str, str, str], list[Record]] = {}
    for r in state.records.values():
        owner = getattr(r.obj, "owner", None)
        if owner:
            out.setdefault((owner[0], r.obj.meta.namespace, owner[1]), []).append(r)
    return out


def _replicaset_for(dep: Deployment) -> ReplicaSet:
    template_hash = deploystatus.template_hash(dep)
    labels = {**dep.template.labels, TEMPLATE_HASH: template_hash}
    template = PodTemplate(labels, dep.template.annotations, dep.template.spec, dep.template.raw)
    selector = replace(dep.selector, match_labels={**dep.selector.match_labels,
                                                   TEMPLATE_HASH: template_hash})
    meta = ObjectMeta(deploystatus.replicaset_name(dep), dep.meta.namespace, labels)
    return ReplicaSet(meta, dep.replicas, selector, template, dep.source, ("Deployment", dep.meta.name), dep.min_ready)


def _scaling_event(state: ClusterState, dep: Deployment, rs_name: str, before: int, after: int) -> None:
    way = "up" if after > before else "down"
    state.events.normal("Deployment", dep.meta.namespace, dep.meta.name, "ScalingReplicaSet",
                        f"Scaled {way} replica set {rs_name} to {after} from {before}", source="deployment-controller")


def reconcile_deployments(state: ClusterState) -> None:
    children = by_owner(state)
    for rec in state.list("Deployment"):
        dep: Deployment = rec.obj
        if rec.deleting:  # deleted in the foreground: its ReplicaSets are going
            continue
        want = _replicaset_for(dep)
        if not validation.is_dns1123_subdomain(want.meta.name):  # the API server would refuse it
            state.events.warn("Deployment", dep.meta.namespace, dep.meta.name, "FailedCreate",
                              f"Failed to create new replica set {want.meta.name[:60]}...: its name would be longer "
                              f"than {validation.DNS1123_SUBDOMAIN_MAX} characters", "deployment-controller")
            continue
        old = [c for c in children.get(("Deployment", dep.meta.namespace, dep.meta.name), [])
               if c.obj.meta.name != want.meta.name]
        newest = max((revision_of(c.obj) for c in old), default=0)
        current = state.get("ReplicaSet", dep.meta.namespace, want.meta.name)
        revision = revision_of(current.obj) if current else 0
        if revision <= newest:  # a new template, or an old one brought back: the next revision
            revision = newest + 1
        annotations = {REVISION: str(revision)}
        if CHANGE_CAUSE in dep.meta.annotations:
            annotations[CHANGE_CAUSE] = dep.meta.annotations[CHANGE_CAUSE]
        old_views = [_revision(c, children) for c in old]
        new_view = _revision(current, children) if current else None
        count = rollout.new_replicas(dep, new_view, old_views)
        want = replace(want, replicas=count, meta=replace(want.meta, annotations=annotations))
        if current is None or current.obj.replicas != want.replicas or current.obj.meta != want.meta:
            before = current.obj.replicas if current else 0
            if before != want.replicas:
                _scaling_event(state, dep, want.meta.name, before, want.replicas)
            state.put("ReplicaSet", want)
        # old revisions shrink as the strategy allows; at zero they stay as history (rollout undo)
        targets = rollout.old_replicas(dep, count, new_view.available if new_view else 0, old_views)
        for child in old:
            if child.obj.meta.name in targets:
                _scaling_event(state, dep, child.obj.meta.name, child.obj.replicas, targets[child.obj.meta.name])
                state.put("ReplicaSet", replace(child.obj, replicas=targets[child.obj.meta.name]))
        history = [c for c in old if not targets.get(c.obj.meta.name, c.obj.replicas)]
        for child in sorted(history, key=lambda c: revision_of(c.obj))[:max(0, len(history) - dep.revision_history_limit)]:
            delete(state, "ReplicaSet", dep.meta.namespace, child.obj.meta.name)


def _revision(rs: Record, children: dict) -> rollout.Revision:
    pods = children.get(("ReplicaSet", rs.obj.meta.namespace, rs.obj.meta.name), [])
    now = time.time()
    return rollout.Revision(rs.obj.meta.name, rs.obj.replicas,
                            sum(1 for p in pods if p.status.available(rs.obj.min_ready, now) and not p.deleting),
                            len(pods), revision_of(rs.obj))


def new_replicaset_name(dep: Deployment) -> str:
    """The ReplicaSet of the Deployment's current template (its pods are the updated ones)."""
    return deploystatus.replicaset_name(dep)


def reconcile_replicasets(state: ClusterState) -> None:
    children = by_owner(state)
    for rec in state.list("ReplicaSet"):
        rs: ReplicaSet = rec.obj
        if rec.deleting:  # deleted in the foreground: its pods are terminating, none replace them
            continue
        live = [p for p in children.get(("ReplicaSet", rs.meta.namespace, rs.meta.name), []) if not p.deleting]
        for _ in range(rs.replicas - len(live)):
            if accounts.refused(state, "ReplicaSet", rs, rs.template.spec, f"{rs.meta.name}-", "replicaset-controller"):
                break
            while True:
                name = naming.generate_name(f"{rs.meta.name}-", state.rng)
                if not state.get("Pod", rs.meta.namespace, name):
                    break
            meta = ObjectMeta(name, rs.meta.namespace, dict(rs.template.labels),
                              dict(rs.template.annotations))
            state.put("Pod", Pod(meta, rs.template.spec, rs.source, ("ReplicaSet", rs.meta.name)))
            state.events.normal("ReplicaSet", rs.meta.namespace, rs.meta.name, "SuccessfulCreate",
                                f"Created pod: {name}", source="replicaset-controller")
        if len(live) > rs.replicas:
            # Kubernetes deletes unscheduled, then not-ready, then the youngest pods first.
            live.sort(key=lambda p: (bool(p.status.node), p.status.ready, -p.created))
            for victim in live[: len(live) - rs.replicas]:
                victim.mark_deleting()
                state.events.normal("ReplicaSet", rs.meta.namespace, rs.meta.name, "SuccessfulDelete",
                                    f"Deleted pod: {victim.obj.meta.name}", source="replicaset-controller")


def schedule_pods(state: ClusterState) -> None:
    pending = [rec for rec in state.pods() if not rec.deleting and not rec.status.node]
    if not pending:
        return
    load = state.pod_load()
    used: dict[str, set[scheduler.PortKey]] | None = None
    if any(rec.obj.spec.host_ports for rec in pending):
        used = {}
        for rec in state.pods():  # a terminating pod holds its host ports until it is gone
            if rec.status.node and rec.obj.spec.host_ports:
                used.setdefault(rec.status.node, set()).update(
                    (proto, ip, port) for proto, ip, port, _ in rec.obj.spec.host_ports)
    placer = scheduler.Placer(nodes.schedulable_view(state), load, used)
    for rec in pending:
        status = rec.status
        try:
            node = placer.place(rec.obj.spec)
            # a hostNetwork pod's IP is its node's (kubelet reports the node's InternalIP)
            if rec.obj.spec.host_network:
                ip = state.config.node(node).ip
            elif state.calico_ipam is not None:  # Calico's CNI plugin: the pools the pod or its namespace names
                ip = state.calico_ipam.allocate(node, rec.obj.key, calicopools.requested(state, rec.obj))
            else:
                ip = state.ipam[node].allocate(rec.obj.key)
        except (scheduler.Unschedulable, AddressesExhausted) as exc:
            if status.message != str(exc):  # once per distinct reason, as kube-scheduler's events
                state.events.warn("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "FailedScheduling", str(exc),
                                  source="default-scheduler")
            status.reason, status.message = "Unschedulable", str(exc)
            continue
        status.node, status.ip, status.reason, status.message = node, ip, "", ""
        status.scheduled_at = time.time()
        state.events.normal("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "Scheduled",
                            f"Successfully assigned {rec.obj.meta.namespace}/{rec.obj.meta.name} to {node}",
                            source="default-scheduler")
        if spreads(rec):
            load[node] = load.get(node, 0) + 1
        state.generation += 1


def reconcile_endpoints(state: ClusterState) -> None:
    """The endpoints controller: each Service with a selector gets Endpoints and an EndpointSlice
    listing the pods it selects. Pods are indexed by label once per pass, so a pass costs about
    the pods and the Services, not their product (1,000 Services over 10,000 pods)."""
    by_ns: dict[str, list] = {}
    index: dict[str, dict[tuple[str, str], set[int]]] = {}
    for p in state.pods():
        # a deleted pod still running (terminating) stays a candidate: the EndpointSlice keeps it
        if p.status.ip and p.status.node and p.status.phase == "Running":
            ns = p.obj.meta.namespace
            members = by_ns.setdefault(ns, [])
            for label in p.obj.meta.labels.items():
                index.setdefault(ns, {}).setdefault(label, set()).add(len(members))
            members.append((p.obj, p.status.ip, p.status.node, p.status.ready, p.deleting))
    slices: dict[tuple[str, str], list] = {}
    for r in state.list("EndpointSlice"):
        if r.obj.managed:
            slices.setdefault((r.obj.meta.namespace, r.obj.meta.labels.get(services.SERVICE_NAME_LABEL)), []).append(r)
    for rec in state.list("Service"):
        svc: Service = rec.obj
        if svc.selector is None or svc.type == "ExternalName":
            continue
        ns = svc.meta.namespace
        members = by_ns.get(ns, [])
        if svc.selector:
            chosen = set.intersection(*(index.get(ns, {}).get(label, set()) for label in svc.selector.items()))
            candidates = [members[i] for i in sorted(chosen)]
        else:
            candidates = members
        want = services.endpoints_for(svc, candidates)
        current = state.get("Endpoints", ns, svc.meta.name)
        if current is None or current.obj != want:
            state.put("Endpoints", want)
        mine = slices.get((ns, svc.meta.name), [])
        name = mine[0].obj.meta.name if mine else services.slice_name(svc, state.rng)
        want_slice = services.slice_for(svc, want, name)
        if not mine or mine[0].obj != want_slice:
            state.put("EndpointSlice", want_slice)


def finish_foreground(state: ClusterState) -> None:
    """The garbage collector's end of a foreground deletion: an owner waiting with the
    foregroundDeletion finalizer goes once nothing it owns is left (pods, then their
    ReplicaSet, then the Deployment, in one pass)."""
    for kind in ("ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
        children = by_owner(state)
        for rec in state.list(kind):
            if rec.finalizers and not children.get((kind, rec.obj.meta.namespace, rec.obj.meta.name)):
                state.remove(kind, rec.obj.meta.namespace, rec.obj.meta.name)


def _pod_spec_changed(rec: Record, new: Pod) -> bool:
    """A pod's spec is immutable but for the node it is bound to, which a client writes back as
    read (``kubectl label pod`` sends the object with the nodeName the scheduler gave it)."""
    old = rec.obj.spec
    if new.spec.node_name and new.spec.node_name == rec.status.node and not old.node_name:
        return replace(new.spec, node_name="") != old
    return new.spec != old


def kubeadm_config(state: ClusterState) -> ConfigMap:
    """kube-system/kubeadm-config as ``kubeadm init`` leaves it: its ClusterConfiguration with the
    cluster's pod and service subnets and DNS domain (``kubectl -n kube-system describe cm
    kubeadm-config | egrep -i 'podsubnet|servicesubnet'``). Rendered with yaml.safe_dump from the
    validated cluster spec."""
    cfg = state.config
    text = yaml.safe_dump({
        "apiServer": {}, "apiVersion": "kubeadm.k8s.io/v1beta4", "certificatesDir": "/etc/kubernetes/pki",
        "clusterName": "kubernetes", "controllerManager": {}, "dns": {},
        "etcd": {"local": {"dataDir": "/var/lib/etcd"}}, "imageRepository": "registry.k8s.io",
        "kind": "ClusterConfiguration", "kubernetesVersion": KUBE_VERSION,
        "networking": {"dnsDomain": cfg.cluster_domain, "podSubnet": cfg.pods.subnet,
                       "serviceSubnet": cfg.services.subnet},
        "proxy": {}, "scheduler": {}}, sort_keys=False)
    return ConfigMap(ObjectMeta(KUBEADM_CONFIG, "kube-system"), {"ClusterConfiguration": text})


def namespace_defaults(state: ClusterState) -> None:
    """What kube-controller-manager keeps in every namespace: the ``default`` ServiceAccount
    (serviceaccount-controller) and, once the API server's CA exists, the ``kube-root-ca.crt``
    ConfigMap (root-ca-cert-publisher); put back when deleted, and the ConfigMap when changed."""
    if state.get("ConfigMap", "kube-system", KUBEADM_CONFIG) is None and "kube-system" in state.namespaces():
        state.put("ConfigMap", kubeadm_config(state))
    for ns in state.namespaces():
        if state.get("ServiceAccount", ns, "default") is None:
            state.put("ServiceAccount", ServiceAccount(ObjectMeta("default", ns)))
        if state.root_ca:
            want = ConfigMap(ObjectMeta(ROOT_CA, ns, annotations={"kubernetes.io/description": ROOT_CA_DESCRIPTION}),
                             {"ca.crt": state.root_ca})
            current = state.get("ConfigMap", ns, ROOT_CA)
            if current is None or current.obj != want:
                state.put("ConfigMap", want)


def reconcile(state: ClusterState) -> None:
    """One pass of every controller, in dependency order."""
    namespace_defaults(state)
    if state.stopped or state.unknown:
        nodelifecycle.tick(state)
    staticpods.ensure(state)
    finish_foreground(state)
    reconcile_deployments(state)
    reconcile_replicasets(state)
    if any(state.kinds.get(k) for k in ("StatefulSet", "DaemonSet", "Job", "CronJob")) or state.jobs or state.cronjobs:
        children = by_owner(state)
        statefulsets.reconcile(state, children)
        daemonsets.reconcile(state, children)
        cronjobs.reconcile(state, children)
        jobs.reconcile(state, by_owner(state) if state.kinds.get("CronJob") else children)
    if state.workloads:
        revisions.forget(state, ("StatefulSet", "DaemonSet"))
    schedule_pods(state)
    reconcile_endpoints(state)
    deploystatus.sync(state, state.deployments)


def release_address(state: ClusterState, rec: Record) -> None:
    """The pod's sandbox is gone: its address goes back to its node's pool, once (the pod
    object may stay, as a pod that ran to completion does, its status naming the address)."""
    pod = rec.obj
    if rec.status.node and rec.status.ip and not pod.spec.host_network and not rec.status.released:
        state.ipam[rec.status.node].release(rec.status.ip)
    rec.status.released = True
    state.generation += 1


def forget_pod(state: ClusterState, rec: Record) -> None:
    """The kubelet has torn the sandbox down: release the address and drop the object."""
    pod = rec.obj
    release_address(state, rec)
    state.remove("Pod", pod.meta.namespace, pod.meta.name)
    state.generation += 1
    reconcile(state)
