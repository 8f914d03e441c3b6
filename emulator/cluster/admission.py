"""Checks that need the whole cluster: a pod pinned to a missing node, more pods than a node's
CIDR holds, an image k8semu cannot run, a namespace that does not exist.

They run before anything is created (``k8semu up``) and on every ``apply``, and simulate the
scheduler so that an over-full node is reported with the line of the workload that fills it.
"""
from __future__ import annotations

import sys
from typing import Iterable

from emulator.cluster.daemonsets import daemon_template
from emulator.errors import Problem
from emulator.model import images, scheduler
from emulator.model.cluster import ClusterConfig
from emulator.model.meta import CLUSTER_SCOPED, Namespace
from emulator.model.pod import ALLOWED_ADDITIONS, Pod, PodSpec
from emulator.model.workload import DaemonSet, Deployment, Job, ReplicaSet, StatefulSet

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MAX_PODS = 10_000  # pods in one cluster: a spec cannot make validation or the machine hold more


def _pod_specs(objects: Iterable, nodes: list) -> list[tuple[object, PodSpec, int]]:
    """Each object that makes pods, its pod spec and how many pods (a DaemonSet: one per node it may run on)."""
    out = []
    for obj in objects:
        if isinstance(obj, Pod):
            out.append((obj, obj.spec, 1))
        elif isinstance(obj, (Deployment, ReplicaSet, StatefulSet)):
            out.append((obj, obj.template.spec, obj.replicas))
        elif isinstance(obj, Job):
            out.append((obj, obj.template.spec, min(obj.parallelism, obj.completions or obj.parallelism)))
        elif isinstance(obj, DaemonSet):
            spec = daemon_template(obj.template).spec
            out.append((obj, spec, sum(1 for n in nodes if scheduler.feasible(n, spec))))
    return out


def _count_field(obj, count: int) -> str:
    """The field that sets how many pods ``obj`` makes, for a problem about their number."""
    if count <= 1 and not isinstance(obj, (Deployment, ReplicaSet, StatefulSet)):
        return "metadata.name"
    return {Job: "spec.parallelism", DaemonSet: "spec.template"}.get(type(obj), "spec.replicas")


def _privileges(obj, container) -> list[Problem]:
    """Pod Security baseline, as an admission check: no privileged containers and no
    capabilities beyond ALLOWED_ADDITIONS unless the cluster spec allows privileged pods (a
    privileged pod is root on this machine: every capability, in an emulator that runs as root)."""
    where = f"containers[{container.name}].securityContext"
    out = []
    if container.security.privileged:
        out.append(Problem(obj.source, f"{where}.privileged", "privileged containers are not allowed (set "
                           "spec.security.allowPrivileged: true in the cluster spec to allow them)"))
    for cap in container.security.add:
        if cap not in ALLOWED_ADDITIONS:
            out.append(Problem(obj.source, f"{where}.capabilities.add", f"adding {cap} is not allowed (allowed: "
                               f"{', '.join(sorted(ALLOWED_ADDITIONS))}; or set spec.security.allowPrivileged: true)"))
    return out


def check_objects(config: ClusterConfig, objects: list, existing_namespaces: Iterable[str] = (),
                  existing_load: dict[str, int] | None = None, existing_pods: int | None = None,
                  nodes: list | None = None) -> list[Problem]:
    """Problems with a batch of objects in the context of the cluster (empty list: all good);
    ``existing_pods`` counts the cluster's pods, scheduled or not (default: those in the load).
    ``nodes`` given (a running cluster's, with the labels kubectl wrote): a pod no node fits is
    accepted and stays Pending with the scheduler's reason, as on a cluster, since a node may be
    labelled or untainted later; without (the cluster spec's manifests, whose nodes no one has
    labelled yet) it is refused at once, so ``up`` does not wait for a pod that cannot start."""
    running = nodes is not None
    nodes = list(config.nodes) if nodes is None else nodes
    problems: list[Problem] = []
    namespaces = set(SYSTEM_NAMESPACES) | set(existing_namespaces) | {
        o.meta.name for o in objects if isinstance(o, Namespace)}
    node_names = {n.name for n in config.nodes}
    load = dict(existing_load or {})
    placer = scheduler.Placer(nodes, load)
    total = sum(load.values()) if existing_pods is None else existing_pods
    for obj in objects:
        if type(obj).__name__ not in CLUSTER_SCOPED and obj.meta.namespace not in namespaces:
            problems.append(Problem(obj.source, "metadata.namespace",
                                    f"namespaces {obj.meta.namespace!r} not found"))
    for obj, spec, count in _pod_specs(objects, nodes):
        what = f"{type(obj).__name__} {obj.meta.namespace}/{obj.meta.name}"
        if spec.node_name and spec.node_name not in node_names:
            problems.append(Problem(obj.source, "spec.nodeName",
                                    f"{what}: node {spec.node_name!r} does not exist "
                                    f"(nodes: {', '.join(sorted(node_names))})"))
            continue
        for container in spec.containers:
            try:
                images.argv_for(container, config.images, {}, sys.executable)
            except images.UnknownImage as exc:
                problems.append(Problem(obj.source, f"containers[{container.name}].image", str(exc)))
            if not config.allow_privileged:
                problems += _privileges(obj, container)
        if total + count > MAX_PODS:
            problems.append(Problem(obj.source, _count_field(obj, count),
                                    f"{what}: the cluster would hold {total + count} pods; k8semu runs at most "
                                    f"{MAX_PODS} pods in a cluster"))
            continue
        total += count
        if isinstance(obj, DaemonSet):  # one pod on each node it may run on, none elsewhere
            full = [n.name for n in nodes if scheduler.feasible(n, spec)
                    and load.get(n.name, 0) + 1 > config.pods.node_capacity()]
            if full:
                problems.append(Problem(obj.source, "spec.template", f"{what}: node {full[0]} would hold more pods "
                                        f"than its /{config.pods.node_mask} pod CIDR holds"))
            continue
        for _ in range(count):
            try:
                node = placer.place(spec)
            except scheduler.Unschedulable as exc:
                if not running:
                    problems.append(Problem(obj.source, "spec", f"{what}: {exc}"))
                break
            load[node] = load.get(node, 0) + 1
            if load[node] > config.pods.node_capacity():
                problems.append(Problem(
                    obj.source, _count_field(obj, count),
                    f"{what}: node {node} would hold {load[node]} pods but its /"
                    f"{config.pods.node_mask} pod CIDR holds {config.pods.node_capacity()} "
                    "(use a shorter nodeCIDRMaskSize or add nodes)"))
                break
    return problems


def check_pod_total(existing: int, growth: int, source, field: str, what: str) -> list[Problem]:
    """The MAX_PODS bound for a change that adds ``growth`` pods to a cluster of ``existing``."""
    if growth > 0 and existing + growth > MAX_PODS:
        return [Problem(source, field, f"{what}: the cluster would hold {existing + growth} pods; k8semu runs at "
                                       f"most {MAX_PODS} pods in a cluster")]
    return []
