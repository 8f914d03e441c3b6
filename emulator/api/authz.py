"""Who may do what: kube-apiserver's authorization of every request by RBAC, impersonation
(``kubectl --as``, ``--as-group``), the escalation check on roles and bindings, and the review
kinds that ask the authorizer (``kubectl auth can-i``, ``auth can-i --list``, ``auth whoami``).

A request becomes the attributes the API server's RequestInfo gives it: its verb (get, list,
watch, create, update, patch, delete, deletecollection; exec, attach and port-forward also need
``create``, as with kube-apiserver 1.31's websocket rule), API group, resource and subresource,
namespace and name (a list selecting one ``metadata.name`` has that name); any other path is a
non-resource request with the HTTP verb in lower case. The group ``system:masters`` (the admin
certificate) may do anything; everyone else gets what the RBAC bindings grant (cluster/rbac.py),
and a request nothing allows is refused with kube-apiserver's 403 and message.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from emulator.api import resources
from emulator.api.backend import Backend
from emulator.api.status import ApiError
from emulator.model.rbac import (ANONYMOUS, AUTHENTICATED, MASTERS, SA_PREFIX, UNAUTHENTICATED, Attributes, ClusterRole,
                                 ClusterRoleBinding, PolicyRule, Role, RoleBinding, describe_rule, uncovered)

WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
STREAMS = ("exec", "attach", "portforward")  # GET upgrades to a websocket: also needs create
FULL_AUTHORITY = (PolicyRule(("*",), ("*",), ("*",)), PolicyRule(("*",), non_resource_urls=("*",)))


@dataclass(frozen=True)
class User:
    """An authenticated user as the API server knows it (user.Info)."""

    name: str
    groups: tuple[str, ...]
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def authenticated(cls, name: str, groups: list[str] | tuple[str, ...]) -> "User":
        """Every authenticated user is in ``system:authenticated`` (the authenticator adds it)."""
        return cls(name, tuple(groups) + (() if AUTHENTICATED in groups else (AUTHENTICATED,)))

    @property
    def master(self) -> bool:
        return MASTERS in self.groups


def resource_attributes(user: User, method: str, group: str, plural: str, namespace: str, name: str,
                        subresource: str, query: dict) -> list[Attributes]:
    """The attributes of a request for a resource; each must be allowed."""
    if method in ("GET", "HEAD"):
        if name:
            verb = "get"
        else:
            verb = "watch" if query.get("watch") in ("1", "true") else "list"
            selected = query.get("fieldSelector", "")
            if selected.startswith("metadata.name=") and "," not in selected:  # RequestInfo's single-name rule
                name = selected.split("=", 1)[1].lstrip("=")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = WRITE_VERBS.get(method, method.lower())
    base = Attributes(user.name, user.groups, verb, True, group, plural, subresource, namespace, name)
    if subresource in STREAMS and verb == "get":
        return [base, Attributes(user.name, user.groups, "create", True, group, plural, subresource, namespace, name)]
    return [base]


def path_attributes(user: User, method: str, path: str) -> Attributes:
    return Attributes(user.name, user.groups, method.lower(), False, path=path)


def forbidden(a: Attributes, reason: str = "") -> ApiError:
    """kube-apiserver's 403 (responsewriters.Forbidden), word for word."""
    if not a.resource_request:
        return ApiError(403, "Forbidden", f'forbidden: User "{a.user}" cannot {a.verb} path "{a.path}"'
                        + (f": {reason}" if reason else ""), {})
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    why = f'User "{a.user}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" {where}' \
          + (f": {reason}" if reason else "")
    return denied(a.resource, a.api_group, a.name, why)


def denied(plural: str, group: str, name: str, why: str) -> ApiError:
    """apierrors.NewForbidden: ``<resource>[.<group>] ["<name>"] is forbidden: <why>``."""
    qualified = f"{plural}.{group}" if group else plural
    message = f'{qualified} "{name}" is forbidden: {why}' if name else f"{qualified} is forbidden: {why}"
    details: dict = {"name": name, "kind": plural} if name else {"kind": plural}
    if group:
        details["group"] = group
    return ApiError(403, "Forbidden", message, details)


def authorize(backend: Backend, wanted: list[Attributes]) -> None:
    """Raises: ApiError (403) for the first of ``wanted`` no binding allows."""
    policy = backend.policy()
    for a in wanted:
        allowed, _ = policy.decide(a)
        if not allowed:
            raise forbidden(a)


def impersonate(backend: Backend, user: User, name: str, groups: list[str], extra: dict) -> User:
    """The user a request acts as with ``Impersonate-User`` (and ``-Group``, ``-Extra-*``), once
    ``user`` may impersonate each of them (verb ``impersonate`` on users, groups, serviceaccounts
    or userextras), with the groups the API server adds.

    Raises:
        ApiError: a group or extra without a user (400); not allowed (403).
    """
    if not name:
        if groups or extra:
            raise ApiError(400, "BadRequest", "requested impersonation of groups or extras without "
                           "impersonating a user")
        return user
    wanted = []
    if name.startswith(SA_PREFIX) and name.count(":") == 3:
        namespace, account = name[len(SA_PREFIX):].split(":")
        wanted.append(Attributes(user.name, user.groups, "impersonate", True, "", "serviceaccounts", "",
                                 namespace, account))
        if not groups:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        wanted.append(Attributes(user.name, user.groups, "impersonate", True, "", "users", "", "", name))
    wanted += [Attributes(user.name, user.groups, "impersonate", True, "", "groups", "", "", g) for g in groups]
    for key, values in extra.items():
        wanted += [Attributes(user.name, user.groups, "impersonate", True, "authentication.k8s.io",
                              "userextras", key, "", v) for v in values]
    policy = backend.policy()
    for a in wanted:
        if not policy.decide(a)[0]:
            raise denied(a.resource, a.api_group, a.name,
                         f'User "{user.name}" cannot impersonate resource "{a.resource}" in API group '
                         f'"{a.api_group}"' + (f' in the namespace "{a.namespace}"' if a.namespace else
                                               " at the cluster scope"))
    if name != ANONYMOUS and AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
        groups = list(groups) + [AUTHENTICATED]
    elif name == ANONYMOUS and UNAUTHENTICATED not in groups:
        groups = list(groups) + [UNAUTHENTICATED]
    return User(name, tuple(groups), dict(extra))


def check_grant(backend: Backend, user: User, obj: object) -> None:
    """The escalation check on a Role, ClusterRole or binding being written by ``user``: a role
    may hold only rules its writer holds (or the writer may ``escalate``); a binding may name
    only a role whose rules its writer holds (or the writer may ``bind`` it). system:masters
    skips it, as kube-apiserver's privileged groups do.

    Raises:
        ApiError: 403 with the API server's message, naming what is not held.
    """
    if user.master:
        return
    plural = resources.by_kind(type(obj).__name__).plural
    meta = obj.meta  # type: ignore[attr-defined]
    namespace = meta.namespace
    policy = backend.policy()

    def may(verb: str, resource: str, name: str) -> bool:
        return policy.decide(Attributes(user.name, user.groups, verb, True, "rbac.authorization.k8s.io",
                                        resource, "", namespace, name))[0]

    def refuse(missing: list[PolicyRule], why: str = "") -> ApiError:
        held = " ".join(f'"{g}"' for g in user.groups)
        text = why or (f'user "{user.name}" (groups=[{held}]) is attempting to grant RBAC permissions not '
                       "currently held:\n" + "\n".join(describe_rule(r) for r in missing))
        return denied(plural, "rbac.authorization.k8s.io", meta.name, text)

    held_rules = policy.rules_for(user.name, user.groups, namespace)
    if isinstance(obj, (Role, ClusterRole)):
        if may("escalate", plural, meta.name):
            return
        missing = uncovered(held_rules, obj.rules)
        if missing:
            raise refuse(missing)
        if isinstance(obj, ClusterRole) and obj.aggregation is not None and uncovered(held_rules, FULL_AUTHORITY):
            raise refuse([], "must have cluster-admin privileges to use the aggregationRule")
        return
    assert isinstance(obj, (RoleBinding, ClusterRoleBinding))
    ref = obj.role_ref
    role_plural = "roles" if ref.kind == "Role" else "clusterroles"
    if may("bind", role_plural, ref.name):
        return
    rules = backend.role_rules(ref.kind, namespace, ref.name)
    if rules is None:
        raise refuse([], f'{role_plural}.rbac.authorization.k8s.io "{ref.name}" not found')
    missing = uncovered(held_rules, rules)
    if missing:
        raise refuse(missing)
