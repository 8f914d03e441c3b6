"""ingress-nginx's controller ConfigMap (``ingress-nginx/ingress-nginx-controller``): the keys
k8semu's nginx honours, each checked against its own grammar before it reaches nginx.conf.

As ingress-nginx does, a value that does not parse is reported and its default kept, and the
rest of the ConfigMap still applies; a key k8semu does not emulate is reported and ignored.
Defaults are ingress-nginx's (docs: user-guide/nginx-configuration/configmap).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

NAMESPACE, NAME = "ingress-nginx", "ingress-nginx-controller"
SIZE = re.compile(r"(0|[1-9][0-9]{0,8})[kKmMgG]?")  # nginx's size syntax, as client_max_body_size takes it
SECONDS = re.compile(r"[1-9][0-9]{0,5}")
ACCEPTED = ("allow-snippet-annotations",)  # read, with nothing to do: k8semu emulates no snippet annotations


@dataclass(frozen=True)
class Options:
    ssl_redirect: bool = True  # a host with TLS redirects HTTP to HTTPS unless its Ingress says not to
    proxy_body_size: str = "1m"  # client_max_body_size
    proxy_connect_timeout: int = 5
    proxy_read_timeout: int = 60
    proxy_send_timeout: int = 60
    use_forwarded_headers: bool = False  # trust the client's X-Forwarded-* (ingress-nginx behind another proxy)
    server_tokens: bool = False  # nginx's version in the Server header and error pages
    problems: tuple[str, ...] = field(default=(), compare=False)


def _bool(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value.strip().lower())


def parse(data: dict[str, str] | None) -> Options:
    """The Options a ConfigMap's data gives, with a problem for each key not applied."""
    values: dict[str, object] = {}
    problems = []
    for key, value in sorted((data or {}).items()):
        if not isinstance(value, str):
            problems.append(f"{key}: not a string; ignored")
            continue
        attr = key.replace("-", "_")
        if key in ("ssl-redirect", "use-forwarded-headers", "server-tokens"):
            parsed = _bool(value)
            ok = parsed is not None
        elif key == "proxy-body-size":
            parsed, ok = value.strip(), bool(SIZE.fullmatch(value.strip()))
        elif key in ("proxy-connect-timeout", "proxy-read-timeout", "proxy-send-timeout"):
            ok = bool(SECONDS.fullmatch(value.strip()))
            parsed = int(value) if ok else None
        elif key in ACCEPTED:
            continue
        else:
            problems.append(f"{key}: not emulated by k8semu's ingress-nginx; ignored")
            continue
        if ok:
            values[attr] = parsed
        else:
            problems.append(f"{key}: invalid value {value[:60]!r}; the default is kept")
    return Options(**values, problems=tuple(problems))
