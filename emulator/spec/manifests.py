"""Kubernetes manifests -> model objects.

Manifests are exactly what one would ``kubectl apply``: several documents per file, ``List``
objects, any namespace. Parsing collects every problem of every document before giving up, so
``k8semu up`` either starts with all of them valid or creates nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.errors import Problem, SpecError
from emulator.model import naming
from emulator.model.meta import Namespace, ObjectMeta
from emulator.model.pod import (Container, ContainerPort, EnvVar, Pod, PodSpec, PodTemplate,
                                Probe, Toleration)
from emulator.model.selectors import OPERATORS, selector_from_dict
from emulator.model.workload import Deployment, ReplicaSet
from emulator.spec import ingress, kinds, netpol, services
from emulator.spec.loader import Document, PathKey, load_file
from emulator.spec.reader import Reader, did_you_mean

KubeObject = Any  # Namespace | Pod | Deployment | ReplicaSet


@dataclass
class ManifestSet:
    """Everything a set of manifest files asks for, in file order."""

    objects: list[KubeObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _label_check(value: Any) -> str | None:
    return None if naming.is_dns1123_label(value) else (
        f"{value!r} is not a valid DNS-1123 label (lowercase letters, digits and '-', "
        "starting and ending with an alphanumeric, at most 63 characters)")


def _subdomain_check(value: Any) -> str | None:
    return None if naming.is_dns1123_subdomain(value) else (
        f"{value!r} is not a valid DNS-1123 subdomain (lowercase alphanumerics, '-' and '.', "
        "at most 253 characters)")


def _meta(r: Reader, path: PathKey, default_ns: str, namespaced: bool,
          name_required: bool = True) -> ObjectMeta:
    r.mapping(path, kinds.META_SUPPORTED, kinds.META_KNOWN,
              required=("name",) if name_required else ())
    name = r.string(path + ("name",), "", check=_subdomain_check) or ""
    namespace = ""
    if namespaced:
        namespace = r.string(path + ("namespace",), default_ns, check=_label_check) or default_ns
    return ObjectMeta(name, namespace, r.string_map(path + ("labels",)),
                      r.string_map(path + ("annotations",)))


def _container(r: Reader, path: PathKey) -> Container:
    r.mapping(path, kinds.CONTAINER_SUPPORTED, kinds.CONTAINER_KNOWN, required=("name", "image"))
    ports = []
    for i, _ in enumerate(r.seq(path + ("ports",))):
        p = path + ("ports", i)
        r.mapping(p, kinds.PORT_SUPPORTED, kinds.PORT_KNOWN, required=("containerPort",))
        proto = r.string(p + ("protocol",), "TCP")
        if proto not in ("TCP", "UDP", "SCTP"):
            r.fail(p + ("protocol",), f"unsupported value {proto!r}: TCP, UDP or SCTP")
        pname = r.string(p + ("name",), "")
        if pname and not (naming.is_dns1123_label(pname) and len(pname) <= 15):
            r.fail(p + ("name",), f"{pname!r} is not a valid port name (IANA_SVC_NAME)")
        ports.append(ContainerPort(r.integer(p + ("containerPort",), 0, 1, 65535) or 0,
                                   pname or "", proto))
    env = []
    for i, _ in enumerate(r.seq(path + ("env",))):
        p = path + ("env", i)
        r.mapping(p, kinds.ENV_SUPPORTED, required=("name",))
        field_path = ""
        if r.get(p + ("valueFrom",)) is not None:
            r.mapping(p + ("valueFrom",), {"fieldRef"}, {"secretKeyRef", "configMapKeyRef",
                                                         "resourceFieldRef"})
            field_path = r.string(p + ("valueFrom", "fieldRef", "fieldPath"), "")
            if field_path and field_path not in kinds.FIELD_PATHS:
                r.fail(p + ("valueFrom", "fieldRef", "fieldPath"),
                       f"unsupported fieldPath {field_path!r}{did_you_mean(field_path, kinds.FIELD_PATHS)}")
        value = r.get(p + ("value",), "")
        env.append(EnvVar(r.string(p + ("name",), "") or "", str(value), field_path))

    def strings(key: str) -> tuple[str, ...]:
        items = r.seq(path + (key,))
        for i, item in enumerate(items):
            if not isinstance(item, str):
                r.fail(path + (key, i), f"expected a string, got {item!r} (quote it)")
        return tuple(str(x) for x in items)
    name = r.string(path + ("name",), "", check=_label_check) or ""
    names = {p.name for p in ports if p.name}
    return Container(name, r.string(path + ("image",), "") or "", strings("command"),
                     strings("args"), tuple(env), tuple(ports), r.string(path + ("workingDir",), ""),
                     _probe(r, path + ("readinessProbe",), names), _probe(r, path + ("livenessProbe",), names))


def _probe(r: Reader, path: PathKey, port_names: set[str]) -> Probe | None:
    if r.get(path) is None:
        return None
    data = r.mapping(path, kinds.PROBE_SUPPORTED, kinds.PROBE_KNOWN)
    actions = [a for a in ("httpGet", "tcpSocket", "exec") if a in data]
    if len(actions) != 1:
        r.fail(path, "must specify exactly one of httpGet, tcpSocket, exec")
        return None
    action = actions[0]
    ap = path + (action,)
    port: int | str = 0
    if action in ("httpGet", "tcpSocket"):
        r.mapping(ap, {"port", "path", "scheme"} if action == "httpGet" else {"port"},
                  {"host", "httpHeaders"} if action == "httpGet" else {"host"}, required=("port",))
        port = r.get(ap + ("port",), 0)
        if isinstance(port, str) and not port.isdigit() and port not in port_names:
            r.fail(ap + ("port",), f"port name {port!r} is not a containerPort name of this container")
        port = int(port) if isinstance(port, str) and port.isdigit() else port
    command = tuple(map(str, r.seq(ap + ("command",)))) if action == "exec" else ()
    return Probe(action, port, str(r.get(ap + ("path",), "/")), str(r.get(ap + ("scheme",), "HTTP")),
                 command, r.integer(path + ("initialDelaySeconds",), 0, 0) or 0,
                 r.integer(path + ("periodSeconds",), 10, 1) or 10, r.integer(path + ("timeoutSeconds",), 1, 1) or 1,
                 r.integer(path + ("successThreshold",), 1, 1) or 1, r.integer(path + ("failureThreshold",), 3, 1) or 3)


def _pod_spec(r: Reader, path: PathKey) -> PodSpec:
    raw = r.mapping(path, kinds.POD_SPEC_SUPPORTED, kinds.POD_SPEC_KNOWN, required=("containers",))
    containers = tuple(_container(r, path + ("containers", i))
                       for i, _ in enumerate(r.seq(path + ("containers",))))
    if raw.get("containers") is not None and not containers:
        r.fail(path + ("containers",), "a pod needs at least one container")
    seen: set[str] = set()
    for i, c in enumerate(containers):
        if c.name in seen:
            r.fail(path + ("containers", i, "name"), f"duplicate container name {c.name!r}")
        seen.add(c.name)
    tolerations = []
    for i, _ in enumerate(r.seq(path + ("tolerations",))):
        p = path + ("tolerations", i)
        r.mapping(p, kinds.TOLERATION_FIELDS)
        tolerations.append(Toleration(r.string(p + ("key",), ""), r.string(p + ("operator",), "Equal"),
                                      r.string(p + ("value",), ""), r.string(p + ("effect",), "")))
    restart = r.string(path + ("restartPolicy",), "Always")
    if restart not in ("Always", "OnFailure", "Never"):
        r.fail(path + ("restartPolicy",), f"unsupported value {restart!r}: Always, OnFailure or Never")
    dns_policy = r.string(path + ("dnsPolicy",), "ClusterFirst")
    r.mapping(path + ("dnsConfig",), {"nameservers", "searches", "options"})
    if dns_policy == "None" and not r.get(path + ("dnsConfig", "nameservers")):
        r.fail(path + ("dnsConfig",), "must provide at least one DNS nameserver when `dnsPolicy` is None")
    policies = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
    if dns_policy not in policies:
        r.fail(path + ("dnsPolicy",), f"unsupported value {dns_policy!r}{did_you_mean(dns_policy, policies)}")
    return PodSpec(containers, r.string(path + ("nodeName",), ""), r.string_map(path + ("nodeSelector",)),
                   tuple(tolerations), restart, r.string(path + ("hostname",), "", check=_label_check),
                   r.string(path + ("subdomain",), "", check=_label_check), dns_policy, dict(raw))


def _template(r: Reader, path: PathKey) -> PodTemplate:
    raw = r.mapping(path, kinds.TEMPLATE_SUPPORTED, required=("spec",))
    r.mapping(path + ("metadata",), kinds.META_SUPPORTED, kinds.META_KNOWN)
    return PodTemplate(r.string_map(path + ("metadata", "labels")),
                       r.string_map(path + ("metadata", "annotations")),
                       _pod_spec(r, path + ("spec",)), dict(raw))


def _workload(r: Reader, meta: ObjectMeta, known: set[str], source) -> tuple:
    path: PathKey = ("spec",)
    r.mapping(path, kinds.WORKLOAD_SPEC_SUPPORTED, known, required=("selector", "template"))
    replicas = r.integer(path + ("replicas",), 1, 0, 10000)
    r.mapping(path + ("selector",), kinds.SELECTOR_FIELDS)
    for i, _ in enumerate(r.seq(path + ("selector", "matchExpressions"))):
        op = r.get(path + ("selector", "matchExpressions", i, "operator"))
        if op not in OPERATORS:
            r.fail(path + ("selector", "matchExpressions", i, "operator"),
                   f"unsupported operator {op!r}{did_you_mean(str(op), OPERATORS)}")
    selector = selector_from_dict(r.get(path + ("selector",), {}) if not r.problems else {})
    template = _template(r, path + ("template",))
    if not r.problems and selector.empty:
        r.fail(path + ("selector",), "empty selector is invalid for a workload")
    elif not r.problems and not selector.matches(template.labels):
        r.fail(path + ("template", "metadata", "labels"),
               "`selector` does not match template `labels`")
    if template.spec.restart_policy != "Always":
        r.fail(path + ("template", "spec", "restartPolicy"),
               f"unsupported value {template.spec.restart_policy!r}: only \"Always\" is allowed")
    return meta, replicas or 0, selector, template, source


def parse_object(doc: Document, default_ns: str = "default") -> tuple[list[KubeObject], list[Problem], list[str]]:
    """One manifest document -> model objects (a ``List`` may hold many)."""
    r = Reader(doc)
    data = doc.data
    if not isinstance(data, dict):
        r.fail((), "a manifest must be a mapping with apiVersion and kind")
        return [], r.problems, r.warnings
    kind = data.get("kind")
    if kind == "List":
        out: list[KubeObject] = []
        for i, _ in enumerate(r.seq(("items",))):
            objs, probs, warns = parse_object(doc.sub(("items", i)), default_ns)
            out += objs
            r.problems += probs
            r.warnings += warns
        return out, r.problems, r.warnings
    if not isinstance(kind, str):
        r.fail(("kind",) if "kind" in data else (), "missing required field 'kind'")
        return [], r.problems, r.warnings
    all_kinds = {**kinds.SUPPORTED_KINDS, **kinds.LATER_KINDS}
    if kind not in all_kinds:
        r.fail(("kind",), f"unknown kind {kind!r}{did_you_mean(kind, all_kinds)}")
        return [], r.problems, r.warnings
    api = data.get("apiVersion")
    if api != all_kinds[kind]:
        r.fail(("apiVersion",) if api else (),
               f"kind {kind} is served as apiVersion {all_kinds[kind]!r}, got {api!r}")
    if kind in kinds.LATER_KINDS:
        name = (data.get("metadata") or {}).get("name", "?")
        r.warnings.append(f"{doc.where(('kind',))}: {kind} {name}: not emulated yet; ignored")
        return [], r.problems, r.warnings
    if kind not in ("Endpoints", "EndpointSlice", "Secret"):
        r.mapping((), kinds.TOP_SUPPORTED, kinds.TOP_KNOWN, required=("metadata",))
    source = doc.where(("metadata", "name"))
    meta = _meta(r, ("metadata",), default_ns, namespaced=kind not in ("Namespace", "IngressClass"))
    obj: KubeObject = None
    if kind == "Namespace":
        r.mapping(("spec",), (), kinds.NAMESPACE_SPEC_KNOWN)
        if meta.name and naming.is_dns1123_subdomain(meta.name) and not naming.is_dns1123_label(meta.name):
            r.fail(("metadata", "name"), _label_check(meta.name) or "")
        obj = Namespace(meta, source)
    elif kind == "Pod":
        obj = Pod(meta, _pod_spec(r, ("spec",)), source)
        if meta.name and len(meta.name) > 63:
            r.fail(("metadata", "name"), "pod names longer than 63 characters cannot be hostnames")
    elif kind == "Deployment":
        obj = Deployment(*_workload(r, meta, kinds.DEPLOYMENT_SPEC_KNOWN, source))
    elif kind == "ReplicaSet":
        obj = ReplicaSet(*_workload(r, meta, kinds.REPLICASET_SPEC_KNOWN, source))
    elif kind == "Service":
        obj = services.parse_service(r, meta, source)
        if meta.name and not naming.is_dns1123_label(meta.name):
            r.fail(("metadata", "name"), _label_check(meta.name) or "")
    elif kind == "Endpoints":
        obj = services.parse_endpoints(r, meta, source)
    elif kind == "EndpointSlice":
        obj = services.parse_endpoint_slice(r, meta, source)
    elif kind == "NetworkPolicy":
        obj = netpol.parse_network_policy(r, meta, source)
    elif kind == "Ingress":
        obj = ingress.parse_ingress(r, meta, source)
    elif kind == "IngressClass":
        obj = ingress.parse_ingress_class(r, meta, source)
    elif kind == "Secret":
        obj = ingress.parse_secret(r, meta, source)
    return ([obj] if not r.problems else []), r.problems, r.warnings


def parse_documents(docs: list[Document], default_ns: str = "default") -> ManifestSet:
    """Parse documents and check them against each other (duplicate names).

    Raises:
        SpecError: every problem of every document.
    """
    out = ManifestSet()
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str], object] = {}
    for doc in docs:
        objs, probs, warns = parse_object(doc, default_ns)
        problems += probs
        out.warnings += warns
        for obj in objs:
            key = (type(obj).__name__, obj.meta.namespace, obj.meta.name)
            if key in seen:
                problems.append(Problem(obj.source, "metadata.name",
                                        f"duplicate {key[0]} {obj.meta.namespace + '/' if key[1] else ''}"
                                        f"{obj.meta.name} (first defined at {seen[key]})"))
                continue
            seen[key] = obj.source
            out.objects.append(obj)
    if problems:
        raise SpecError(problems)
    return out


def load_manifest_files(paths: list[str], default_ns: str = "default") -> ManifestSet:
    """Read manifest files (``kubectl apply -f`` for each).

    Raises:
        SpecError: unreadable, malformed or invalid manifests.
    """
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            docs += load_file(path)
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    return parse_documents(docs, default_ns)
