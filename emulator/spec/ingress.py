"""Ingress, IngressClass and Secret manifests -> model, with the API server's checks."""
from __future__ import annotations

import base64
import binascii

from emulator.model import validation
from emulator.model.ingress import Backend, Ingress, IngressClass, IngressPath, IngressRule, Secret
from emulator.model.meta import ObjectMeta
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
ANN = "nginx.ingress.kubernetes.io/"
BACKEND_PROTOCOLS = ("HTTP", "HTTPS", "AUTO_HTTP", "GRPC", "GRPCS", "FCGI")
# ingress-nginx annotations k8semu acts on, each with ingress-nginx's own validator (parser/validators.go)
ANNOTATIONS = {
    "rewrite-target": validation.check_rewrite_target,
    "use-regex": lambda v: None if v in ("true", "false") else f"{v!r}: must be \"true\" or \"false\"",
    "ssl-redirect": lambda v: None if v in ("true", "false") else f"{v!r}: must be \"true\" or \"false\"",
    "backend-protocol": lambda v: None if v.upper() in BACKEND_PROTOCOLS else
    f"{v!r}: must be one of {', '.join(BACKEND_PROTOCOLS)}",
}


def _host(value: str) -> str | None:
    bare = value[2:] if value.startswith("*.") else value
    if validation.is_dns1123_subdomain(bare) and "*" not in bare:
        return None
    return f"Invalid value: {value!r}: a DNS-1123 subdomain, or a wildcard starting with '*.'"


def _backend(r: Reader, p: PathKey) -> Backend | None:
    if r.get(p) is None:
        return None
    r.mapping(p, {"service"}, {"resource"}, required=("service",))
    r.mapping(p + ("service",), {"name", "port"}, required=("name", "port"))
    r.mapping(p + ("service", "port"), {"number", "name"})
    number = r.integer(p + ("service", "port", "number"), None, 1, 65535)
    name = r.string(p + ("service", "port", "name"), None, check=validation.check_port_name)
    if (number is None) == (name is None) and not r.problems:
        r.fail(p + ("service", "port"), "must specify exactly one of a port number or name")
    service = r.string(p + ("service", "name"), "", check=validation.check_dns1035_label) or ""
    return Backend(service, number or name or 0)


def parse_ingress(r: Reader, meta: ObjectMeta, source) -> Ingress:
    spec: PathKey = ("spec",)
    r.mapping(spec, {"ingressClassName", "defaultBackend", "rules", "tls"})
    rules = []
    for i, _ in enumerate(r.seq(spec + ("rules",))):
        p = spec + ("rules", i)
        r.mapping(p, {"host", "http"})
        host = r.string(p + ("host",), "", check=lambda v: _host(v) if v else None) or ""
        r.mapping(p + ("http",), {"paths"})
        paths = []
        for j, _ in enumerate(r.seq(p + ("http", "paths"))):
            q = p + ("http", "paths", j)
            r.mapping(q, {"path", "pathType", "backend"}, required=("pathType", "backend"))
            path_type = r.string(q + ("pathType",), "Prefix")
            if path_type not in PATH_TYPES:
                r.fail(q + ("pathType",), f"Unsupported value: {path_type!r}{did_you_mean(str(path_type), PATH_TYPES)}")
            path = r.string(q + ("path",), "/") or "/"
            regex = meta.annotations.get(ANN + "use-regex") == "true" or ANN + "rewrite-target" in meta.annotations
            message = validation.check_ingress_path(path, "ImplementationSpecific" if regex else path_type)
            if message:
                r.fail(q + ("path",), f"Invalid value: {message}")
                path = "/"
            backend = _backend(r, q + ("backend",))
            if backend:
                paths.append(IngressPath(path, path_type or "Prefix", backend))
        rules.append(IngressRule(host, tuple(paths)))
    tls = []
    for i, _ in enumerate(r.seq(spec + ("tls",))):
        p = spec + ("tls", i)
        r.mapping(p, {"hosts", "secretName"})
        hosts = []
        for j, host in enumerate(r.seq(p + ("hosts",))):
            if message := _host(host) if isinstance(host, str) else f"expected a string, got {host!r}":
                r.fail(p + ("hosts", j), message)
            else:
                hosts.append(host)
        tls.append((tuple(hosts), r.string(p + ("secretName",), "", check=lambda v: validation.check_dns1123_subdomain(v)
                                           if v else None) or ""))
    default = _backend(r, spec + ("defaultBackend",))
    if not rules and default is None:
        r.fail(spec, "either `defaultBackend` or `rules` must be specified")
    for key, value in meta.annotations.items():
        check = ANNOTATIONS.get(key.removeprefix(ANN)) if key.startswith(ANN) else None
        if check and (message := check(value)):
            r.fail(("metadata", "annotations", key), f"ingress-nginx refuses this annotation: {message}")
    cls = r.string(spec + ("ingressClassName",), "", check=lambda v: validation.check_dns1123_subdomain(v) if v else None)
    return Ingress(meta, cls or "", default, tuple(rules), tuple(tls), source)


def parse_ingress_class(r: Reader, meta: ObjectMeta, source) -> IngressClass:
    r.mapping(("spec",), {"controller"}, {"parameters"})
    return IngressClass(meta, r.string(("spec", "controller"), "k8s.io/ingress-nginx") or "", source)


def parse_secret(r: Reader, meta: ObjectMeta, source) -> Secret:
    r.mapping((), {"apiVersion", "kind", "metadata", "type", "data", "stringData"}, {"immutable"})
    data = dict(r.string_map(("data",)))
    for key in list(data) + list(r.string_map(("stringData",))):
        if not (key and len(key) <= 253 and all(c.isalnum() and c.isascii() or c in "-._" for c in key)):
            r.fail(("data", key), f"Invalid value: {key!r}: a valid config key must consist of alphanumeric "
                                  "characters, '-', '_' or '.'")
    for key, value in data.items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            r.fail(("data", key), "Invalid value: illegal base64 data")
    for key, value in r.string_map(("stringData",)).items():
        data[key] = base64.b64encode(value.encode()).decode()
    return Secret(meta, r.string(("type",), "Opaque") or "Opaque", data, source)
