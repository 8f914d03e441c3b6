"""ServiceAccount tokens: what the kubelet puts in a pod and the API server accepts as a bearer.

A JSON Web Token with the claims kube-apiserver's tokens carry (issuer, ``sub`` =
``system:serviceaccount:<namespace>:<name>``, the ``kubernetes.io`` claim naming the namespace,
the service account and the pod, each with its uid: a token outlives neither, nor is it taken
by a ServiceAccount or pod re-created under the same name), signed with HMAC-SHA256 under a per-cluster key (kube-apiserver
signs with RS256; clients never check the signature, only the API server does, and here both
ends are k8semu). Written with the standard library: hmac, hashlib, base64, json.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

ISSUER = "https://kubernetes.default.svc.cluster.local"
LIFETIME = 365 * 24 * 3600
KEY_FILE = "pki/sa.key"  # in the cluster's run directory: the signing key (the API makes it)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(key: bytes, namespace: str, account: str, account_uid: str, pod: str, pod_uid: str,
          now: float | None = None, lifetime: int = LIFETIME, audiences: tuple[str, ...] = (ISSUER,)) -> str:
    """A token for ``account`` (whose uid is ``account_uid``); bound to a pod when ``pod`` is
    named (the kubelet's), else not (``kubectl create token``'s TokenRequest)."""
    now = int(now if now is not None else time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    bound: dict = {"namespace": namespace, "serviceaccount": {"name": account, "uid": account_uid}}
    if pod:
        bound["pod"] = {"name": pod, "uid": pod_uid}
    claims = {"aud": list(audiences), "iss": ISSUER, "iat": now, "nbf": now, "exp": now + lifetime,
              "sub": f"system:serviceaccount:{namespace}:{account}", "kubernetes.io": bound}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing}.{_b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())}"


def verify(key: bytes, token: str, now: float | None = None) -> tuple[str, list[str]] | None:
    """The user and groups a valid, unexpired token names; None for anything else."""
    try:
        header, claims, signature = token.split(".")
        expected = hmac.new(key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            return None
        body = json.loads(_unb64(claims))
        if (now if now is not None else time.time()) >= body["exp"] or ISSUER not in body["aud"]:
            return None  # expired, or meant for another audience than the API server
        namespace = body["kubernetes.io"]["namespace"]
        return body["sub"], ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    except (ValueError, KeyError, TypeError):
        return None


def binding(token: str) -> tuple[str, str, str, str, str]:
    """(namespace, ServiceAccount, its uid, pod, pod uid) a token names (pod "" when unbound),
    for a token ``verify`` accepted: the API server also checks they still exist, by uid."""
    body = json.loads(_unb64(token.split(".")[1]))
    bound = body["kubernetes.io"]
    pod = bound.get("pod") or {}
    account = bound["serviceaccount"]
    return bound["namespace"], account["name"], account.get("uid", ""), pod.get("name", ""), pod.get("uid", "")
