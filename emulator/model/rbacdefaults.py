"""The RBAC objects every cluster starts with, as kube-apiserver's bootstrap policy and kubeadm
make them (their names, labels, rules and subjects), limited to the user-facing roles: the
aggregated ``admin``/``edit``/``view`` with the ``system:aggregate-to-*`` roles they gather,
``cluster-admin``, and what every signed-in user may do (discovery, ``kubectl auth can-i`` and
``whoami``). The components' own roles (``system:controller:*``, ``system:node``, kube-proxy's,
...) are model/rbacsystem.py's.

The rules name only resources this API serves, so ``kubectl describe clusterrole view`` lists
what a user of this cluster can reach with it.
"""
from __future__ import annotations

from emulator.model.meta import ObjectMeta
from emulator.model.rbac import (AUTHENTICATED, GROUP, MASTERS, UNAUTHENTICATED, ClusterRole, ClusterRoleBinding,
                                 PolicyRule, RoleRef, Subject)
from emulator.model.selectors import LabelSelector

BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
KUBEADM_ADMINS = "kubeadm:cluster-admins"


def _rule(verbs: tuple[str, ...], group: str, *resources: str) -> PolicyRule:
    return PolicyRule(verbs, (group,), tuple(resources))


def _role(name: str, rules: tuple[PolicyRule, ...], labels: dict | None = None,
          aggregate: str = "") -> ClusterRole:
    meta = ObjectMeta(name, labels={**BOOTSTRAP_LABELS, **(labels or {})}, annotations=dict(AUTOUPDATE))
    selectors = (LabelSelector({AGGREGATE + aggregate: "true"}),) if aggregate else None
    return ClusterRole(meta, rules, selectors)


def _binding(name: str, role: str, groups: tuple[str, ...], bootstrap: bool = True) -> ClusterRoleBinding:
    meta = ObjectMeta(name, labels=dict(BOOTSTRAP_LABELS) if bootstrap else {},
                      annotations=dict(AUTOUPDATE) if bootstrap else {})
    return ClusterRoleBinding(meta, RoleRef("ClusterRole", role),
                              tuple(Subject("Group", g, api_group=GROUP) for g in groups))


def cluster_roles() -> list[ClusterRole]:
    view = (
        _rule(READ, "", "configmaps", "endpoints", "pods", "replicationcontrollers", "replicationcontrollers/scale",
              "serviceaccounts", "services", "services/status"),
        _rule(READ, "", "events", "namespaces/status", "pods/log", "pods/status", "replicationcontrollers/status"),
        _rule(READ, "", "namespaces"),
        _rule(READ, "discovery.k8s.io", "endpointslices"),
        _rule(READ, "apps", "controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
              "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
              "statefulsets", "statefulsets/scale", "statefulsets/status"),
        _rule(READ, "batch", "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
        _rule(READ, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
        _rule(READ, "networking.k8s.io", "ingresses", "ingresses/status", "networkpolicies"),
    )
    edit = (
        _rule(READ, "", "pods/attach", "pods/exec", "pods/portforward", "secrets"),
        _rule(("impersonate",), "", "serviceaccounts"),
        _rule(WRITE, "", "pods", "pods/attach", "pods/exec", "pods/portforward"),
        _rule(("create",), "", "pods/eviction"),
        _rule(WRITE, "", "configmaps", "events", "replicationcontrollers", "replicationcontrollers/scale", "secrets",
              "serviceaccounts", "services"),
        _rule(("create",), "", "serviceaccounts/token"),
        _rule(WRITE, "apps", "daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
              "replicasets/scale", "statefulsets", "statefulsets/scale"),
        _rule(WRITE, "batch", "cronjobs", "jobs"),
        _rule(WRITE, "policy", "poddisruptionbudgets"),
        _rule(WRITE, "networking.k8s.io", "ingresses", "networkpolicies"),
    )
    admin = (
        _rule(("create",), "authorization.k8s.io", "localsubjectaccessreviews"),
        _rule(READ + WRITE, GROUP, "rolebindings", "roles"),
    )
    discovery = PolicyRule(("get",), non_resource_urls=(
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
        "/version", "/version/"))
    public = PolicyRule(("get",), non_resource_urls=("/healthz", "/livez", "/readyz", "/version", "/version/"))
    return [
        _role("admin", (), aggregate="admin"),
        _role("cluster-admin", (PolicyRule(("*",), ("*",), ("*",)), PolicyRule(("*",), non_resource_urls=("*",)))),
        _role("edit", (), {AGGREGATE + "admin": "true"}, aggregate="edit"),
        _role("system:aggregate-to-admin", admin, {AGGREGATE + "admin": "true"}),
        _role("system:aggregate-to-edit", edit, {AGGREGATE + "edit": "true"}),
        _role("system:aggregate-to-view", view, {AGGREGATE + "view": "true"}),
        _role("system:auth-delegator", (_rule(("create",), "authentication.k8s.io", "tokenreviews"),
                                        _rule(("create",), "authorization.k8s.io", "subjectaccessreviews"))),
        _role("system:basic-user", (_rule(("create",), "authorization.k8s.io", "selfsubjectaccessreviews",
                                          "selfsubjectrulesreviews"),
                                    _rule(("create",), "authentication.k8s.io", "selfsubjectreviews"))),
        _role("system:discovery", (discovery,)),
        _role("system:public-info-viewer", (public,)),
        _role("view", (), {AGGREGATE + "edit": "true"}, aggregate="view"),
    ]


def cluster_role_bindings() -> list[ClusterRoleBinding]:
    return [
        _binding("cluster-admin", "cluster-admin", (MASTERS,)),
        _binding(KUBEADM_ADMINS, "cluster-admin", (KUBEADM_ADMINS,), bootstrap=False),  # kubeadm's, for admin.conf
        _binding("system:basic-user", "system:basic-user", (AUTHENTICATED,)),
        _binding("system:discovery", "system:discovery", (AUTHENTICATED,)),
        _binding("system:public-info-viewer", "system:public-info-viewer", (AUTHENTICATED, UNAUTHENTICATED)),
    ]
