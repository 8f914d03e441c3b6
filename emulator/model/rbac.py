"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding, and the
rule arithmetic of kube-apiserver's RBAC authorizer.

A request is described by ``Attributes`` (who, which verb, on which resource or path); a rule
allows it when its verbs, API groups, resources (``resource/subresource``, ``*``, ``*/sub``) and
resource names (empty: any) all match, or, for a path outside the API, when one of its
``nonResourceURLs`` equals the path or is a prefix ending in ``*``. ``covers`` is the escalation
check: a user may only grant (in a role, or by binding one) what they already hold, taken apart
into single verb/group/resource/name pieces as the API server does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import SourceRef
from emulator.model.meta import ObjectMeta
from emulator.model.selectors import LabelSelector

GROUP = "rbac.authorization.k8s.io"
ALL = "*"
ANONYMOUS = "system:anonymous"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"  # kube-apiserver lets this group do anything, before RBAC is asked
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class PolicyRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """As the API shows it: empty lists left out."""
        out: dict = {}
        for key, value in (("apiGroups", self.api_groups), ("resources", self.resources),
                           ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls)):
            if value:
                out[key] = list(value)
        out["verbs"] = list(self.verbs)
        return out


@dataclass(frozen=True)
class Role:
    meta: ObjectMeta
    rules: tuple[PolicyRule, ...] = ()
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ClusterRole:
    """``aggregation`` (aggregationRule.clusterRoleSelectors): None for a plain role; otherwise
    its rules are those of every ClusterRole its selectors match (cluster/rbac.py keeps them)."""

    meta: ObjectMeta
    rules: tuple[PolicyRule, ...] = ()
    aggregation: tuple[LabelSelector, ...] | None = None
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RoleRef:
    kind: str  # Role | ClusterRole
    name: str
    api_group: str = GROUP


@dataclass(frozen=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str = ""
    api_group: str = ""

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "name": self.name}
        if self.api_group:
            out["apiGroup"] = self.api_group
        if self.namespace:
            out["namespace"] = self.namespace
        return out

    def applies(self, user: str, groups: tuple[str, ...] | list[str], binding_namespace: str) -> bool:
        """rbac.go appliesToUser: a ServiceAccount subject without a namespace is in the binding's."""
        if self.kind == "User":
            return user == self.name
        if self.kind == "Group":
            return self.name in groups
        if self.kind == "ServiceAccount":
            return user == f"{SA_PREFIX}{self.namespace or binding_namespace}:{self.name}"
        return False


@dataclass(frozen=True)
class Binding:
    """What both kinds of binding hold: a role and who gets it."""

    meta: ObjectMeta
    role_ref: RoleRef
    subjects: tuple[Subject, ...] = ()
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RoleBinding(Binding):
    """Grants its role in its own namespace only."""


@dataclass(frozen=True)
class ClusterRoleBinding(Binding):
    """Grants a ClusterRole everywhere."""


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizer sees it (k8s.io/apiserver authorizer.Attributes)."""

    user: str
    groups: tuple[str, ...]
    verb: str
    resource_request: bool = True
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


def _has(values: tuple[str, ...], wanted: str) -> bool:
    return ALL in values or wanted in values


def allows(rule: PolicyRule, a: Attributes) -> bool:
    """rbac.go RuleAllows."""
    if not _has(rule.verbs, a.verb):
        return False
    if not a.resource_request:
        return any(u == ALL or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
                   for u in rule.non_resource_urls)
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resource_ok = any(r == ALL or r == combined or (a.subresource and r == f"*/{a.subresource}")
                      for r in rule.resources)
    return (_has(rule.api_groups, a.api_group) and resource_ok
            and (not rule.resource_names or a.name in rule.resource_names))


def _covers_one(owner: PolicyRule, piece: PolicyRule) -> bool:
    """validation.ruleCovers, for a piece with one verb and at most one group, resource, name, URL."""
    if not _has(owner.verbs, piece.verbs[0]):
        return False
    if piece.non_resource_urls:
        url = piece.non_resource_urls[0]
        return any(o == ALL or o == url or (o.endswith("*") and url.startswith(o[:-1]))
                   for o in owner.non_resource_urls)
    group, resource = piece.api_groups[0], piece.resources[0]
    if not _has(owner.api_groups, group):
        return False
    sub = resource.partition("/")[2]
    if not (ALL in owner.resources or resource in owner.resources
            or (sub and f"*/{sub}" in owner.resources)):
        return False
    return not owner.resource_names or bool(piece.resource_names) and piece.resource_names[0] in owner.resource_names


def _pieces(rule: PolicyRule) -> list[PolicyRule]:
    """validation.BreakdownRule: one rule per verb × group × resource × name (or URL)."""
    out = []
    for verb in rule.verbs:
        for url in rule.non_resource_urls:
            out.append(PolicyRule((verb,), non_resource_urls=(url,)))
        for group in rule.api_groups:
            for resource in rule.resources:
                names = rule.resource_names or ("",)
                out += [PolicyRule((verb,), (group,), (resource,), (n,) if n else ()) for n in names]
    return out


def uncovered(owner: list[PolicyRule] | tuple[PolicyRule, ...], wanted: tuple[PolicyRule, ...]) -> list[PolicyRule]:
    """The pieces of ``wanted`` that no rule of ``owner`` covers (empty: the owner holds them all)."""
    return [p for rule in wanted for p in _pieces(rule) if not any(_covers_one(o, p) for o in owner)]


def describe_rule(rule: PolicyRule) -> str:
    """A rule as the API server's escalation message prints it (Go's %v of a PolicyRule, compacted)."""
    parts = []
    for key, values in (("APIGroups", rule.api_groups), ("Resources", rule.resources),
                        ("ResourceNames", rule.resource_names), ("NonResourceURLs", rule.non_resource_urls),
                        ("Verbs", rule.verbs)):
        if values:
            parts.append(f"{key}:[" + " ".join(f'"{v}"' for v in values) + "]")
    return "{" + ", ".join(parts) + "}"
