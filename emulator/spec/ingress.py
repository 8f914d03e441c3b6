"""Ingress, IngressClass and Secret manifests -> model, with the API server's checks."""
from __future__ import annotations

import base64
import binascii

from emulator.model import naming
from emulator.model.ingress import Backend, Ingress, IngressClass, IngressPath, IngressRule, Secret
from emulator.model.meta import ObjectMeta
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")


def _backend(r: Reader, p: PathKey) -> Backend | None:
    if r.get(p) is None:
        return None
    r.mapping(p, {"service"}, {"resource"}, required=("service",))
    r.mapping(p + ("service",), {"name", "port"}, required=("name", "port"))
    r.mapping(p + ("service", "port"), {"number", "name"})
    port = r.get(p + ("service", "port", "number")) or r.get(p + ("service", "port", "name"))
    if port is None:
        r.fail(p + ("service", "port"), "must specify a port number or name")
    return Backend(r.string(p + ("service", "name"), "") or "", port or 0)


def parse_ingress(r: Reader, meta: ObjectMeta, source) -> Ingress:
    spec: PathKey = ("spec",)
    r.mapping(spec, {"ingressClassName", "defaultBackend", "rules", "tls"})
    rules = []
    for i, _ in enumerate(r.seq(spec + ("rules",))):
        p = spec + ("rules", i)
        r.mapping(p, {"host", "http"})
        host = r.string(p + ("host",), "") or ""
        bare = host[2:] if host.startswith("*.") else host
        if host and not naming.is_dns1123_subdomain(bare):
            r.fail(p + ("host",), f"Invalid value: {host!r}: a wildcard DNS-1123 subdomain must start with '*.'")
        r.mapping(p + ("http",), {"paths"})
        paths = []
        for j, _ in enumerate(r.seq(p + ("http", "paths"))):
            q = p + ("http", "paths", j)
            r.mapping(q, {"path", "pathType", "backend"}, required=("pathType", "backend"))
            path_type = r.string(q + ("pathType",), "Prefix")
            if path_type not in PATH_TYPES:
                r.fail(q + ("pathType",), f"Unsupported value: {path_type!r}{did_you_mean(str(path_type), PATH_TYPES)}")
            path = r.string(q + ("path",), "/") or "/"
            if path_type in ("Exact", "Prefix") and not path.startswith("/"):
                r.fail(q + ("path",), f"Invalid value: {path!r}: must be an absolute path")
            backend = _backend(r, q + ("backend",))
            if backend:
                paths.append(IngressPath(path, path_type or "Prefix", backend))
        rules.append(IngressRule(host, tuple(paths)))
    tls = []
    for i, _ in enumerate(r.seq(spec + ("tls",))):
        p = spec + ("tls", i)
        r.mapping(p, {"hosts", "secretName"})
        tls.append((tuple(map(str, r.seq(p + ("hosts",)))), r.string(p + ("secretName",), "") or ""))
    default = _backend(r, spec + ("defaultBackend",))
    if not rules and default is None:
        r.fail(spec, "either `defaultBackend` or `rules` must be specified")
    return Ingress(meta, r.string(spec + ("ingressClassName",), "") or "", default, tuple(rules), tuple(tls), source)


def parse_ingress_class(r: Reader, meta: ObjectMeta, source) -> IngressClass:
    r.mapping(("spec",), {"controller"}, {"parameters"})
    return IngressClass(meta, r.string(("spec", "controller"), "k8s.io/ingress-nginx") or "", source)


def parse_secret(r: Reader, meta: ObjectMeta, source) -> Secret:
    r.mapping((), {"apiVersion", "kind", "metadata", "type", "data", "stringData"}, {"immutable"})
    data = dict(r.string_map(("data",)))
    for key, value in data.items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            r.fail(("data", key), "Invalid value: illegal base64 data")
    for key, value in r.string_map(("stringData",)).items():
        data[key] = base64.b64encode(value.encode()).decode()
    return Secret(meta, r.string(("type",), "Opaque") or "Opaque", data, source)
