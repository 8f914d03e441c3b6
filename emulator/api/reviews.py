"""The review kinds: created, answered by the authorizer, never stored (kube-apiserver's
authorization.k8s.io and authentication.k8s.io). ``kubectl auth can-i`` creates a
SelfSubjectAccessReview, ``auth can-i --list`` a SelfSubjectRulesReview, ``auth whoami`` a
SelfSubjectReview; SubjectAccessReview and LocalSubjectAccessReview ask for another user (who
may ask is up to RBAC: ``system:auth-delegator``, or ``admin`` in a namespace). A ServiceAccount's
``token`` subresource (``kubectl create token``) is answered here too."""
from __future__ import annotations

import time

from emulator.api.authz import User
from emulator.api.backend import Backend
from emulator.api.status import ApiError
from emulator.cluster.apimeta import timestamp
from emulator.model import satoken
from emulator.model.rbac import Attributes

ACCESS_REVIEWS = ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview")


def _invalid(kind: str, field: str, message: str) -> ApiError:
    return ApiError(422, "Invalid", f'{kind}.authorization.k8s.io "" is invalid: {field}: {message}',
                    {"kind": kind, "group": "authorization.k8s.io",
                     "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]})


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _attributes(kind: str, spec: dict, user: User, url_namespace: str) -> Attributes:
    resource, path = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (path is None) or not isinstance(resource or path, dict):
        raise _invalid(kind, "spec.resourceAttributes",
                       "exactly one of nonResourceAttributes or resourceAttributes must be specified")
    if path is not None:
        return Attributes(user.name, user.groups, str(path.get("verb", "")), False, path=str(path.get("path", "")))
    namespace = str(resource.get("namespace", "") or "")
    if kind == "LocalSubjectAccessReview":
        if namespace and namespace != url_namespace:
            raise _invalid(kind, "spec.resourceAttributes.namespace", "must match metadata.namespace")
        namespace = url_namespace
    return Attributes(user.name, user.groups, str(resource.get("verb", "")), True, str(resource.get("group", "")),
                      str(resource.get("resource", "")), str(resource.get("subresource", "")), namespace,
                      str(resource.get("name", "")))


def answer(backend: Backend, user: User, kind: str, url_namespace: str, body: dict) -> dict:
    """The review ``body`` asks for, answered for ``user`` (or, for a SubjectAccessReview, for
    the user its spec names).

    Raises:
        ApiError: not a mapping (400), a spec the API server refuses (422).
    """
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    group = "authentication.k8s.io" if kind == "SelfSubjectReview" else "authorization.k8s.io"
    meta = dict(body.get("metadata") or {}) if isinstance(body.get("metadata"), dict) else {}
    meta["creationTimestamp"] = None
    if kind == "LocalSubjectAccessReview":
        meta["namespace"] = url_namespace
    out: dict = {"kind": kind, "apiVersion": f"{group}/v1", "metadata": meta}
    if kind == "SelfSubjectReview":
        info: dict = {"username": user.name, "groups": list(user.groups)}
        if user.extra:
            info["extra"] = {k: list(v) for k, v in user.extra.items()}
        out["status"] = {"userInfo": info}
        return out
    out["spec"] = spec
    if kind == "SelfSubjectRulesReview":
        rules = backend.policy().rules_for(user.name, user.groups, str(spec.get("namespace", "") or ""))
        out["status"] = {
            "resourceRules": [{k: v for k, v in r.to_dict().items() if k != "nonResourceURLs"}
                              for r in rules if not r.non_resource_urls],
            "nonResourceRules": [{"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)}
                                 for r in rules if r.non_resource_urls],
            "incomplete": False}
        return out
    if kind != "SelfSubjectAccessReview":  # SubjectAccessReview, LocalSubjectAccessReview: the spec's user
        name, groups = str(spec.get("user", "") or ""), _strings(spec.get("groups"))
        if not name and not groups:
            raise _invalid(kind, "spec.user", "at least one of user or group must be specified")
        user = User(name, groups)
    allowed, reason = backend.policy().decide(_attributes(kind, spec, user, url_namespace))
    out["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
    return out


TOKEN_MIN, TOKEN_MAX, TOKEN_DEFAULT = 600, 2**32, 3600  # the API server's limits and default (seconds)


def token_request(backend: Backend, key: bytes, namespace: str, account: str, body: object) -> dict:
    """``serviceaccounts/<name>/token`` (``kubectl create token``): a TokenRequest answered
    with a token for the ServiceAccount, not bound to a pod, for ``expirationSeconds`` (one
    hour unless asked, at least ten minutes) and its audiences (the API server's by default;
    a token for other audiences is not accepted here, as on a cluster).

    Raises:
        ApiError: no such ServiceAccount (404), a spec the API server refuses (422).
    """
    account_uid = backend.service_account_uid(namespace, account)
    if not account_uid:
        raise ApiError(404, "NotFound", f'serviceaccounts "{account}" not found',
                       {"name": account, "kind": "serviceaccounts"})
    spec = body.get("spec") if isinstance(body, dict) and isinstance(body.get("spec"), dict) else {}
    seconds = spec.get("expirationSeconds") or TOKEN_DEFAULT
    audiences = _strings(spec.get("audiences")) or (satoken.ISSUER,)
    why = ("expected an integer" if not isinstance(seconds, int) or isinstance(seconds, bool) else
           "may not specify a duration less than 10 minutes" if seconds < TOKEN_MIN else
           "may not specify a duration larger than 2^32 seconds" if seconds > TOKEN_MAX else "")
    if why:
        raise ApiError(422, "Invalid", f'TokenRequest.authentication.k8s.io "{account}" is invalid: '
                       f"spec.expirationSeconds: Invalid value: {seconds}: {why}",
                       {"name": account, "group": "authentication.k8s.io", "kind": "TokenRequest",
                        "causes": [{"reason": "FieldValueInvalid", "message": why, "field": "spec.expirationSeconds"}]})
    now = int(time.time())
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": account, "namespace": namespace, "creationTimestamp": None},
            "spec": {"audiences": list(audiences), "expirationSeconds": seconds, "boundObjectRef": None},
            "status": {"token": satoken.issue(key, namespace, account, account_uid, "", "", now, seconds, audiences),
                       "expirationTimestamp": timestamp(now + seconds)}}
