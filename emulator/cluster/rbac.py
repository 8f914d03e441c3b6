"""RBAC in the cluster: the rules each binding grants, as kube-apiserver's RBAC authorizer reads
them, the ClusterRole aggregation controller's rules, and the objects as the API shows them.

``Policy`` is a snapshot of every binding with its role's rules resolved, built when a request
needs it after an RBAC object changed (``ClusterState.policy`` is dropped on every such change),
so deciding a request reads no store and takes no lock. A binding to a role that does not exist
grants nothing, as on a real cluster; a RoleBinding grants only in its own namespace, even when
it names a ClusterRole.
"""
from __future__ import annotations

from dataclasses import dataclass

from emulator.cluster.apimeta import meta as _meta
from emulator.cluster.store import ClusterState, Record
from emulator.errors import Problem
from emulator.model.rbac import (GROUP, MASTERS, SA_PREFIX, Attributes, ClusterRole, ClusterRoleBinding, PolicyRule, Role,
                                 RoleBinding, Subject, allows)

API_VERSION = f"{GROUP}/v1"


def effective_rules(state: ClusterState, role: ClusterRole) -> tuple[PolicyRule, ...]:
    """A ClusterRole's rules: its own, or with an aggregationRule those of every other ClusterRole
    its selectors match, in name order and without repeats (the aggregation controller's)."""
    return aggregated(role, [r.obj for r in state.list("ClusterRole")])


def aggregated(role: ClusterRole, every: list[ClusterRole], seen: frozenset[str] = frozenset()) -> tuple[PolicyRule, ...]:
    """``role``'s rules among ``every`` ClusterRole. An aggregated role gathers the rules other
    aggregated roles hold (``admin`` takes ``edit``'s, which took ``view``'s), as the controller's
    stored results do; a loop of aggregations stops where it started."""
    if role.aggregation is None:
        return role.rules
    seen = seen | {role.meta.name}
    out: list[PolicyRule] = []
    for other in sorted(every, key=lambda r: r.meta.name):
        if other.meta.name in seen or not any(s.matches(other.meta.labels) for s in role.aggregation):
            continue
        for rule in aggregated(other, every, seen):
            if rule not in out:
                out.append(rule)
    return tuple(out)


@dataclass(frozen=True)
class Grant:
    """One binding, its role's rules resolved: ``namespace`` "" for a ClusterRoleBinding."""

    binding_kind: str
    binding: str
    namespace: str
    role_kind: str
    role: str
    subjects: tuple[Subject, ...]
    rules: tuple[PolicyRule, ...]

    def subject_for(self, user: str, groups: tuple[str, ...]) -> Subject | None:
        return next((s for s in self.subjects if s.applies(user, groups, self.namespace)), None)

    def reason(self, subject: Subject) -> str:
        """Why the RBAC authorizer allowed: its reason string, word for word (rbac.go's describers)."""
        binding = f"{self.binding}/{self.namespace}" if self.namespace else self.binding
        who = subject.name if subject.kind != "ServiceAccount" else f"{subject.name}/{subject.namespace or self.namespace}"
        return f'RBAC: allowed by {self.binding_kind} "{binding}" of {self.role_kind} "{self.role}" to {subject.kind} "{who}"'


class Policy:
    """Every binding of the cluster with the rules it grants (see the module docstring),
    indexed by whom its subjects name (a user, a ServiceAccount's user name, a group), so a
    request reads only the bindings that can apply to its user and groups, in binding order."""

    def __init__(self, grants: list[Grant]) -> None:
        self.grants = tuple(grants)
        self.by_who: dict[tuple[str, str], list[int]] = {}
        for i, grant in enumerate(self.grants):
            for subject in grant.subjects:
                key = _principal(subject, grant.namespace)
                if key is not None and i not in self.by_who.get(key, ()):
                    self.by_who.setdefault(key, []).append(i)

    def _for(self, user: str, groups: tuple[str, ...]) -> list[Grant]:
        found = set(self.by_who.get(("User", user), ()))
        for group in groups:
            found.update(self.by_who.get(("Group", group), ()))
        return [self.grants[i] for i in sorted(found)]

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str) -> list[PolicyRule]:
        """What ``user`` may do in ``namespace`` ("": at the cluster scope), in binding order
        (SelfSubjectRulesReview; the escalation check)."""
        out: list[PolicyRule] = []
        for grant in self._for(user, groups):
            if (not grant.namespace or grant.namespace == namespace) and grant.subject_for(user, groups):
                out += [r for r in grant.rules if r not in out]
        return out

    def decide(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason) as kube-apiserver's authorizers answer: system:masters may do
        anything (reason ""), then the first binding whose subject and rule match."""
        if MASTERS in a.groups:
            return True, ""
        for grant in self._for(a.user, a.groups):
            if grant.namespace and grant.namespace != a.namespace:
                continue
            subject = grant.subject_for(a.user, a.groups)
            if subject is not None and any(allows(rule, a) for rule in grant.rules):
                return True, grant.reason(subject)
        return False, ""


def _principal(subject: Subject, binding_namespace: str) -> tuple[str, str] | None:
    """The user or group a subject stands for (Subject.applies): a ServiceAccount is the user
    ``system:serviceaccount:<namespace>:<name>``, in the binding's namespace when it names none."""
    if subject.kind == "ServiceAccount":
        return "User", f"{SA_PREFIX}{subject.namespace or binding_namespace}:{subject.name}"
    if subject.kind in ("User", "Group"):
        return subject.kind, subject.name
    return None


def policy_of(state: ClusterState) -> Policy:
    return policy_from([r.obj for r in state.list("ClusterRole")], [r.obj for r in state.list("Role")],
                       [r.obj for r in state.list("ClusterRoleBinding")], [r.obj for r in state.list("RoleBinding")])


def policy_from(cluster_roles: list[ClusterRole], roles: list[Role], cluster_bindings: list[ClusterRoleBinding],
                bindings: list[RoleBinding]) -> Policy:
    """The bindings, cluster-wide first, each in (namespace, name) order, with their roles' rules."""
    rules = {("ClusterRole", "", r.meta.name): aggregated(r, cluster_roles) for r in cluster_roles}
    rules.update({("Role", r.meta.namespace, r.meta.name): r.rules for r in roles})
    grants = []
    for kind, objs in (("ClusterRoleBinding", cluster_bindings), ("RoleBinding", bindings)):
        for b in sorted(objs, key=lambda b: (b.meta.namespace, b.meta.name)):
            ns = b.meta.namespace if b.role_ref.kind == "Role" else ""
            grants.append(Grant(kind, b.meta.name, b.meta.namespace, b.role_ref.kind, b.role_ref.name,
                                b.subjects, rules.get((b.role_ref.kind, ns, b.role_ref.name), ())))
    return Policy(grants)


def role_rules(state: ClusterState, kind: str, namespace: str, name: str) -> tuple[PolicyRule, ...] | None:
    """The rules of the role a binding names (None: there is no such role)."""
    rec = state.get(kind, namespace if kind == "Role" else "", name)
    if rec is None:
        return None
    return effective_rules(state, rec.obj) if kind == "ClusterRole" else rec.obj.rules


def refused_changes(state: ClusterState, objects: list, fresh: list) -> list[Problem]:
    """A binding's roleRef cannot change (the API server's ValidateRoleBindingUpdate)."""
    out = []
    for obj in objects:
        if isinstance(obj, (RoleBinding, ClusterRoleBinding)) and obj not in fresh:
            kind = type(obj).__name__
            old = state.get(kind, obj.meta.namespace, obj.meta.name)
            if old is not None and old.obj.role_ref != obj.role_ref:
                ref = obj.role_ref
                out.append(Problem(obj.source, "roleRef", f'Invalid value: rbac.RoleRef{{APIGroup:"{ref.api_group}", '
                                   f'Kind:"{ref.kind}", Name:"{ref.name}"}}: cannot change roleRef'))
    return out


def objects(state: ClusterState, kind: str, namespace: str | None) -> list[dict]:
    """Roles, ClusterRoles and their bindings as the API returns them (an aggregated ClusterRole
    shows the rules the aggregation controller gathered)."""
    recs = sorted(state.list(kind, namespace), key=lambda r: (r.obj.meta.namespace, r.obj.meta.name))
    return [_object(state, kind, rec) for rec in recs]


def _object(state: ClusterState, kind: str, rec: Record) -> dict:
    obj = rec.obj
    out: dict = {"apiVersion": API_VERSION, "kind": kind,
                 "metadata": _meta(rec, namespaced=kind in ("Role", "RoleBinding"))}
    if kind in ("Role", "ClusterRole"):
        rules = effective_rules(state, obj) if kind == "ClusterRole" else obj.rules
        if kind == "ClusterRole" and obj.aggregation is not None:
            out["aggregationRule"] = {"clusterRoleSelectors": [s.to_dict() for s in obj.aggregation]}
        out["rules"] = [r.to_dict() for r in rules] or None  # Go's nil slice, as kube-apiserver prints it
        return out
    out["roleRef"] = {"apiGroup": obj.role_ref.api_group, "kind": obj.role_ref.kind, "name": obj.role_ref.name}
    if obj.subjects:
        out["subjects"] = [s.to_dict() for s in obj.subjects]
    return out
