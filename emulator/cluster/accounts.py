"""The ServiceAccount admission plugin's one check that k8semu emulates: a pod that names a
ServiceAccount its namespace does not have is refused (``pods "x" is forbidden: error looking up
service account ns/name: serviceaccount "name" not found``), whether a client creates it (403)
or a controller does (a FailedCreate Event on the workload, retried on its next pass).

``default`` always passes: the service-account controller makes it in every namespace as soon
as the namespace exists (controllers.namespace_defaults), where kube-apiserver may refuse a pod
for the moment in between.
"""
from __future__ import annotations

from emulator.cluster.store import ClusterState
from emulator.errors import Problem
from emulator.model import podadmission
from emulator.model.config import ServiceAccount
from emulator.model.pod import Pod, PodSpec


def missing(state: ClusterState, namespace: str, spec: PodSpec, pending: frozenset = frozenset()) -> str:
    """Why the admission plugin refuses a pod of ``spec`` in ``namespace``, or "". ``pending``:
    (namespace, name) of ServiceAccounts created before it in the same batch."""
    name = podadmission.account_name(spec.raw)
    if name == "default" or state.get("ServiceAccount", namespace, name) or (namespace, name) in pending:
        return ""
    return f'error looking up service account {namespace}/{name}: serviceaccount "{name}" not found'


def check(state: ClusterState, objects: list, fresh: list) -> list[Problem]:
    """The new pods of a batch (in the batch's order, as kubectl apply sends them one by one)
    that name a missing ServiceAccount."""
    pending: set[tuple[str, str]] = set()
    out = []
    for obj in objects:
        if isinstance(obj, ServiceAccount):
            pending.add((obj.meta.namespace, obj.meta.name))
        elif isinstance(obj, Pod) and obj in fresh:
            why = missing(state, obj.meta.namespace, obj.spec, frozenset(pending))
            if why:
                out.append(Problem(obj.source, "spec.serviceAccountName", f'pods "{obj.meta.name}" is forbidden: {why}'))
    return out


def refused(state: ClusterState, kind: str, owner, spec: PodSpec, pod_name: str, source: str) -> bool:
    """A controller about to create pod ``pod_name`` (a generateName prefix, or a StatefulSet's
    name) of ``spec`` for ``owner`` (its object): True, with the controller's FailedCreate Event
    on the owner, when the admission plugin would refuse it."""
    why = missing(state, owner.meta.namespace, spec)
    if not why:
        return False
    refusal = f'pods "{pod_name}" is forbidden: {why}'
    message = (f"create Pod {pod_name} in StatefulSet {owner.meta.name} failed error: {refusal}"
               if kind == "StatefulSet" else f"Error creating: {refusal}")
    state.events.warn(kind, owner.meta.namespace, owner.meta.name, "FailedCreate", message, source=source)
    return True
