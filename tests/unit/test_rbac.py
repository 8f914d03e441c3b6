"""RBAC without a cluster: rule matching, the escalation check's coverage, the manifests' checks,
aggregation of the bootstrap roles, binding resolution, request attributes and the reviews."""
from __future__ import annotations

import pytest

from emulator.api import authz, reviews
from emulator.api.status import ApiError
from emulator.cluster import rbac
from emulator.model import rbacdefaults
from emulator.model.meta import ObjectMeta
from emulator.model.rbac import (Attributes, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
                                 allows, uncovered)
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_object


def _a(verb: str, resource: str = "pods", group: str = "", namespace: str = "demo", name: str = "",
       subresource: str = "", user: str = "u", groups: tuple[str, ...] = ("system:authenticated",)) -> Attributes:
    return Attributes(user, groups, verb, True, group, resource, subresource, namespace, name)


def test_a_rule_matches_verbs_groups_resources_subresources_and_names():
    rule = PolicyRule(("get", "list"), ("",), ("pods", "pods/log"), ("web",))
    assert allows(rule, _a("get", name="web"))
    assert not allows(rule, _a("get", name="db"))  # resourceNames limit the names
    assert not allows(rule, _a("delete", name="web"))
    assert allows(rule, _a("get", name="web", subresource="log"))
    assert not allows(rule, _a("get", name="web", subresource="exec"))
    assert not allows(rule, _a("get", "deployments", "apps", name="web"))
    assert allows(PolicyRule(("*",), ("*",), ("*/scale",)), _a("update", "deployments", "apps", subresource="scale"))
    assert not allows(PolicyRule(("*",), ("*",), ("*/scale",)), _a("update", "deployments", "apps"))


def test_non_resource_urls_match_exactly_or_by_a_trailing_star():
    rule = PolicyRule(("get",), non_resource_urls=("/healthz", "/apis/*"))
    path = lambda p: Attributes("u", (), "get", False, path=p)  # noqa: E731
    assert allows(rule, path("/healthz")) and allows(rule, path("/apis/apps/v1"))
    assert not allows(rule, path("/healthz/etcd")) and not allows(rule, path("/api"))


def test_coverage_takes_the_wanted_rules_apart():
    held = [PolicyRule(("get", "list"), ("",), ("pods",)), PolicyRule(("*",), ("apps",), ("deployments",), ("web",))]
    assert uncovered(held, (PolicyRule(("get",), ("",), ("pods",)),)) == []
    assert uncovered(held, (PolicyRule(("get", "delete"), ("",), ("pods",)),)) == [
        PolicyRule(("delete",), ("",), ("pods",))]
    # a name-limited grant does not cover every name
    assert uncovered(held, (PolicyRule(("get",), ("apps",), ("deployments",)),)) != []
    assert uncovered(held, (PolicyRule(("get",), ("apps",), ("deployments",), ("web",)),)) == []
    assert uncovered([PolicyRule(("*",), ("*",), ("*",))], (PolicyRule(("get",), non_resource_urls=("/x",)),)) != []


def _policy(*extra_bindings, roles=()) -> rbac.Policy:
    bindings = [b for b in extra_bindings if isinstance(b, RoleBinding)]
    cluster = rbacdefaults.cluster_role_bindings() + [b for b in extra_bindings if isinstance(b, ClusterRoleBinding)]
    return rbac.policy_from(rbacdefaults.cluster_roles(), list(roles), cluster, bindings)


def test_bootstrap_roles_aggregate_view_into_edit_into_admin():
    every = rbacdefaults.cluster_roles()
    by_name = {r.meta.name: rbac.aggregated(r, every) for r in every}
    for rule in by_name["view"]:
        assert rule in by_name["edit"] and rule in by_name["admin"]
    assert all(rule in by_name["admin"] for rule in by_name["edit"])
    assert any("rolebindings" in r.resources for r in by_name["admin"])
    assert not any("rolebindings" in r.resources for r in by_name["edit"])
    assert not any(set(r.verbs) & {"create", "delete"} for r in by_name["view"])


def test_a_role_binding_grants_only_in_its_namespace_even_for_a_cluster_role():
    sa = Subject("ServiceAccount", "reader")  # no namespace: the binding's
    policy = _policy(RoleBinding(ObjectMeta("r", "demo"), RoleRef("ClusterRole", "view"), (sa,)))
    who = dict(user="system:serviceaccount:demo:reader",
               groups=("system:serviceaccounts", "system:serviceaccounts:demo", "system:authenticated"))
    allowed, reason = policy.decide(_a("list", **who))
    assert allowed and reason == ('RBAC: allowed by RoleBinding "r/demo" of ClusterRole "view" to '
                                  'ServiceAccount "reader/demo"')
    assert not policy.decide(_a("list", namespace="default", **who))[0]
    assert not policy.decide(_a("list", namespace="", **who))[0]
    assert not policy.decide(_a("delete", **who))[0]
    assert policy.decide(_a("get", "pods", namespace="", user="anyone", groups=("system:masters",))) == (True, "")


def test_bindings_are_read_in_order_among_those_naming_the_user_its_groups_or_its_account():
    """The snapshot's index by subject keeps rbac.go's order: the first binding (cluster-wide
    first, then by namespace and name) whose subject and rule match gives the reason."""
    user = lambda name: Subject("User", name, api_group="rbac.authorization.k8s.io")  # noqa: E731
    group = lambda name: Subject("Group", name, api_group="rbac.authorization.k8s.io")  # noqa: E731
    policy = _policy(RoleBinding(ObjectMeta("b-user", "demo"), RoleRef("ClusterRole", "view"), (user("bob"),)),
                     RoleBinding(ObjectMeta("a-group", "demo"), RoleRef("ClusterRole", "view"), (group("dev"),)),
                     RoleBinding(ObjectMeta("c-sa", "demo"), RoleRef("ClusterRole", "edit"),
                                 (Subject("ServiceAccount", "bot"), user("bob"))))
    assert policy.decide(_a("list", user="bob", groups=("dev",))) == (
        True, 'RBAC: allowed by RoleBinding "a-group/demo" of ClusterRole "view" to Group "dev"')
    assert policy.decide(_a("list", user="bob")) == (
        True, 'RBAC: allowed by RoleBinding "b-user/demo" of ClusterRole "view" to User "bob"')
    assert policy.decide(_a("delete", user="bob"))[1] == (
        'RBAC: allowed by RoleBinding "c-sa/demo" of ClusterRole "edit" to User "bob"')
    assert policy.decide(_a("delete", user="system:serviceaccount:demo:bot"))[1] == (
        'RBAC: allowed by RoleBinding "c-sa/demo" of ClusterRole "edit" to ServiceAccount "bot/demo"')
    assert not policy.decide(_a("delete", user="system:serviceaccount:other:bot"))[0]
    assert not policy.decide(_a("list", user="carol"))[0]


def test_a_binding_to_a_missing_role_grants_nothing():
    policy = _policy(ClusterRoleBinding(ObjectMeta("b"), RoleRef("ClusterRole", "gone"),
                                        (Subject("User", "bob", api_group="rbac.authorization.k8s.io"),)))
    assert not policy.decide(_a("get", user="bob"))[0]


def _parse(text: str):
    objs, problems, _ = parse_object(load_text(text, "t.yaml")[0])
    return objs, sorted(f"{p.field}: {p.message}" for p in problems)


def test_manifests_are_checked_as_the_api_server_checks_them():
    objs, problems = _parse("""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:odd"}
rules:
- {verbs: [get], nonResourceURLs: [/x], resources: [pods], apiGroups: [""]}
- {apiGroups: [""], resources: [pods]}
- {verbs: [get]}
""")
    assert problems == [
        "rules[0].nonResourceURLs: Invalid value: rules cannot apply to both regular resources and non-resource URLs",
        "rules[1].verbs: Required value: verbs must contain at least one value",
        "rules[2].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[2].resources: Required value: resource rules must supply at least one resource"]
    objs, problems = _parse("""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "a/b"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: x}
subjects: [{kind: ServiceAccount, name: robot}, {kind: User, name: bob}]
""")
    assert problems == ["metadata.name: 'a/b': may not contain '/'",
                        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
                        "subjects[0].namespace: Required value"]
    objs, problems = _parse("""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "system:x", namespace: demo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: bob}]
""")
    assert problems == [] and objs[0].subjects[0].api_group == "rbac.authorization.k8s.io"  # defaulted


def test_request_attributes_follow_request_info():
    user = authz.User.authenticated("bob", ["dev"])
    assert user.groups == ("dev", "system:authenticated")
    query = {"watch": "true", "fieldSelector": "metadata.name=web"}
    one = authz.resource_attributes(user, "GET", "", "pods", "demo", "", "", query)
    assert [(a.verb, a.name) for a in one] == [("watch", "web")]
    assert authz.resource_attributes(user, "DELETE", "", "pods", "demo", "", "", {})[0].verb == "deletecollection"
    exec_ = authz.resource_attributes(user, "GET", "", "pods", "demo", "web", "exec", {})
    assert [a.verb for a in exec_] == ["get", "create"]
    denied = authz.forbidden(exec_[1])
    assert denied.code == 403 and denied.message == (
        'pods "web" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "demo"')
    assert authz.forbidden(authz.path_attributes(user, "GET", "/x")).message == \
        'forbidden: User "bob" cannot get path "/x"'


class _Backend:
    def __init__(self, policy: rbac.Policy) -> None:
        self._policy = policy

    def policy(self) -> rbac.Policy:
        return self._policy

    def role_rules(self, kind, namespace, name):
        return rbac.aggregated(next(r for r in rbacdefaults.cluster_roles() if r.meta.name == name),
                               rbacdefaults.cluster_roles()) if kind == "ClusterRole" else None


def test_impersonation_needs_the_impersonate_verb_and_adds_the_groups():
    backend = _Backend(_policy())
    admin = authz.User.authenticated("kubernetes-admin", ["system:masters"])
    sa = authz.impersonate(backend, admin, "system:serviceaccount:demo:bot", [], {})
    assert sa.groups == ("system:serviceaccounts", "system:serviceaccounts:demo", "system:authenticated")
    with pytest.raises(ApiError) as err:
        authz.impersonate(backend, authz.User.authenticated("bob", []), "alice", [], {})
    assert err.value.code == 403 and err.value.message == (
        'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster '
        "scope")
    with pytest.raises(ApiError) as err:
        authz.impersonate(backend, admin, "", ["dev"], {})
    assert err.value.code == 400


def test_no_one_grants_what_they_do_not_hold():
    alice = authz.User.authenticated("alice", [])
    admin_in_demo = RoleBinding(ObjectMeta("a", "demo"), RoleRef("ClusterRole", "admin"),
                                (Subject("User", "alice", api_group="rbac.authorization.k8s.io"),))
    backend = _Backend(_policy(admin_in_demo))
    authz.check_grant(backend, alice, Role(ObjectMeta("ok", "demo"), (PolicyRule(("get",), ("",), ("pods",)),)))
    authz.check_grant(backend, alice, RoleBinding(ObjectMeta("v", "demo"), RoleRef("ClusterRole", "view"), ()))
    with pytest.raises(ApiError) as err:
        authz.check_grant(backend, alice, RoleBinding(ObjectMeta("x", "demo"), RoleRef("ClusterRole", "cluster-admin"),
                                                      ()))
    assert err.value.message.startswith(
        'rolebindings.rbac.authorization.k8s.io "x" is forbidden: user "alice" (groups=["system:authenticated"]) is '
        "attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}")
    with pytest.raises(ApiError):  # admin of demo holds nothing in another namespace
        authz.check_grant(backend, alice, Role(ObjectMeta("ok", "other"), (PolicyRule(("get",), ("",), ("pods",)),)))


def test_reviews_answer_for_the_asker_or_the_named_user():
    backend = _Backend(_policy())
    bob = authz.User.authenticated("bob", [])
    ask = {"spec": {"resourceAttributes": {"verb": "create", "group": "authorization.k8s.io",
                                           "resource": "selfsubjectaccessreviews"}}}
    out = reviews.answer(backend, bob, "SelfSubjectAccessReview", "", ask)
    assert out["status"]["allowed"] and "system:basic-user" in out["status"]["reason"]
    out = reviews.answer(backend, bob, "SubjectAccessReview", "", {"spec": {
        "user": "carol", "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "demo"}}})
    assert out["status"] == {"allowed": False}
    whoami = reviews.answer(backend, bob, "SelfSubjectReview", "", {})
    assert whoami["status"]["userInfo"] == {"username": "bob", "groups": ["system:authenticated"]}
    rules = reviews.answer(backend, bob, "SelfSubjectRulesReview", "", {"spec": {"namespace": "demo"}})
    assert any(r["verbs"] == ["get"] and "/version" in r["nonResourceURLs"] for r in rules["status"]["nonResourceRules"])
    with pytest.raises(ApiError) as err:
        reviews.answer(backend, bob, "SelfSubjectAccessReview", "", {"spec": {}})
    assert err.value.code == 422
