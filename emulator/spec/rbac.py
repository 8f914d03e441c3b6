"""Role, ClusterRole, RoleBinding and ClusterRoleBinding manifests -> model, refusing what the
API server refuses (k8s.io/kubernetes pkg/apis/rbac/validation): rules need verbs and either
API groups with resources or (ClusterRoles only) non-resource URLs, never both; a roleRef names
a Role or ClusterRole of rbac.authorization.k8s.io (a ClusterRoleBinding only a ClusterRole);
subjects are Users and Groups of that API group or ServiceAccounts of the core group, and a
ClusterRoleBinding's ServiceAccount names its namespace."""
from __future__ import annotations

from emulator.model import validation
from emulator.model.meta import ObjectMeta
from emulator.model.rbac import (GROUP, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
                                 Subject)
from emulator.spec import labels
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader

RULE_FIELDS = {"verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"}
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _strings(r: Reader, path: PathKey) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(r.seq(path)):
        if isinstance(item, str):
            out.append(item)
        else:
            r.fail(path + (i,), f"expected a string, got {item!r}")
    return tuple(out)


def _rules(r: Reader, namespaced: bool) -> tuple[PolicyRule, ...]:
    out = []
    for i, _ in enumerate(r.seq(("rules",))):
        p: PathKey = ("rules", i)
        r.mapping(p, RULE_FIELDS)
        rule = PolicyRule(*(_strings(r, p + (key,)) for key in
                            ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")))
        if not rule.verbs:
            r.fail(p + ("verbs",), "Required value: verbs must contain at least one value")
        if rule.non_resource_urls:
            if namespaced:
                r.fail(p + ("nonResourceURLs",), "Invalid value: namespaced rules cannot apply to non-resource URLs")
            if rule.api_groups or rule.resources:
                r.fail(p + ("nonResourceURLs",), "Invalid value: rules cannot apply to both regular resources and "
                       "non-resource URLs")
        else:
            if not rule.api_groups:
                r.fail(p + ("apiGroups",), "Required value: resource rules must supply at least one api group")
            if not rule.resources:
                r.fail(p + ("resources",), "Required value: resource rules must supply at least one resource")
        out.append(rule)
    return tuple(out)


def parse_role(r: Reader, meta: ObjectMeta, source) -> Role:
    r.mapping((), {"apiVersion", "kind", "metadata", "rules"})
    return Role(meta, _rules(r, True), source)


def parse_cluster_role(r: Reader, meta: ObjectMeta, source) -> ClusterRole:
    r.mapping((), {"apiVersion", "kind", "metadata", "rules", "aggregationRule"})
    aggregation = None
    if r.get(("aggregationRule",)) is not None:
        r.mapping(("aggregationRule",), {"clusterRoleSelectors"})
        selectors = []
        for i, _ in enumerate(r.seq(("aggregationRule", "clusterRoleSelectors"))):
            found = labels.selector(r, ("aggregationRule", "clusterRoleSelectors", i))
            if found is not None:
                selectors.append(found)
        if not r.seq(("aggregationRule", "clusterRoleSelectors")):
            r.fail(("aggregationRule", "clusterRoleSelectors"),
                   "Required value: at least one clusterRoleSelector required if aggregationRule is non-nil")
        aggregation = tuple(selectors)
    return ClusterRole(meta, _rules(r, False), aggregation, source)


def _role_ref(r: Reader, kinds: tuple[str, ...]) -> RoleRef:
    r.mapping(("roleRef",), {"apiGroup", "kind", "name"}, required=("kind", "name"))
    group = r.string(("roleRef", "apiGroup"), "") or ""
    if group != GROUP:
        r.fail(("roleRef", "apiGroup"), f'Unsupported value: "{group}": supported values: "{GROUP}"')
    kind = r.string(("roleRef", "kind"), "") or ""
    if kind and kind not in kinds:
        r.fail(("roleRef", "kind"), f'Unsupported value: "{kind}": supported values: '
               + ", ".join(f'"{k}"' for k in kinds))
    name = r.string(("roleRef", "name"), "") or ""
    why = validation.check_path_segment_name(name) if name else "Required value"
    if why:
        r.fail(("roleRef", "name"), why)
    return RoleRef(kind, name, group)


def _subjects(r: Reader, namespaced: bool) -> tuple[Subject, ...]:
    out = []
    for i, _ in enumerate(r.seq(("subjects",))):
        p: PathKey = ("subjects", i)
        r.mapping(p, {"kind", "name", "namespace", "apiGroup"}, required=("kind", "name"))
        kind = r.string(p + ("kind",), "") or ""
        name = r.string(p + ("name",), "") or ""
        group = r.string(p + ("apiGroup",), "") or ""
        if not group and kind in ("User", "Group"):
            group = GROUP  # the API server's defaulting (SetDefaults_Subject)
        namespace = r.string(p + ("namespace",), "") or ""
        if kind == "ServiceAccount":
            if name and not validation.is_dns1123_subdomain(name):
                r.fail(p + ("name",), f"Invalid value: {validation.check_dns1123_subdomain(name)}")
            if group:
                r.fail(p + ("apiGroup",), f'Unsupported value: "{group}": supported values: ""')
            if not namespaced and not namespace:
                r.fail(p + ("namespace",), "Required value")
            if namespace and not validation.is_dns1123_label(namespace):
                r.fail(p + ("namespace",), f"Invalid value: {validation.check_dns1123_label(namespace)}")
        elif kind in ("User", "Group"):
            if group != GROUP:
                r.fail(p + ("apiGroup",), f'Unsupported value: "{group}": supported values: "{GROUP}"')
        elif kind:
            r.fail(p + ("kind",), f'Unsupported value: "{kind}": supported values: '
                   + ", ".join(f'"{k}"' for k in SUBJECT_KINDS))
        out.append(Subject(kind, name, namespace, group))
    return tuple(out)


def parse_role_binding(r: Reader, meta: ObjectMeta, source) -> RoleBinding:
    r.mapping((), {"apiVersion", "kind", "metadata", "roleRef", "subjects"}, required=("roleRef",))
    return RoleBinding(meta, _role_ref(r, ("Role", "ClusterRole")), _subjects(r, True), source)


def parse_cluster_role_binding(r: Reader, meta: ObjectMeta, source) -> ClusterRoleBinding:
    r.mapping((), {"apiVersion", "kind", "metadata", "roleRef", "subjects"}, required=("roleRef",))
    return ClusterRoleBinding(meta, _role_ref(r, ("ClusterRole",)), _subjects(r, False), source)


def parse(r: Reader, kind: str, meta: ObjectMeta, source) -> Role | ClusterRole | RoleBinding | ClusterRoleBinding:
    return {"Role": parse_role, "ClusterRole": parse_cluster_role, "RoleBinding": parse_role_binding,
            "ClusterRoleBinding": parse_cluster_role_binding}[kind](r, meta, source)
