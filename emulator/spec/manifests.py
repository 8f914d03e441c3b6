"""Kubernetes manifests -> model objects.

Manifests are exactly what one would ``kubectl apply``: several documents per file, ``List``
objects, any namespace. Parsing collects every problem of every document before giving up, so
``k8semu up`` either starts with all of them valid or creates nothing.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import Problem, SpecError
from emulator.model import defaults, podadmission, validation
from emulator.model.meta import CLUSTER_SCOPED, RBAC_KINDS, Namespace, ObjectMeta
from emulator.model.pod import Container, ContainerPort, Pod, PodSpec, PodTemplate, Toleration
from emulator.model.selectors import selector_from_dict
from emulator.model.volume import Volume
from emulator.model.workload import Deployment, ReplicaSet
from emulator.spec import calicobgp, calicopool, configmaps, disruption, ingress, kinds, labels, netpol, rbac, services, workloads
from emulator.spec.containerfields import pre_stop, probe, resources, security
from emulator.spec.env import parse_env
from emulator.spec.loader import Document, PathKey, load_file
from emulator.spec.reader import Reader, did_you_mean, dotted
from emulator.spec.volumes import check_resource_refs, check_shared_mounts, parse_mounts, parse_volumes

KubeObject = Any  # Namespace | Pod | Deployment | ReplicaSet | StatefulSet | ...


@dataclass
class ManifestSet:
    """Everything a set of manifest files asks for, in file order."""

    objects: list[KubeObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


_label_check = validation.check_dns1123_label
_subdomain_check = validation.check_dns1123_subdomain
MAX_NAMESERVERS, MAX_SEARCHES, MAX_SEARCH_CHARS = 3, 32, 2048
MAX_INT64 = 2**63 - 1
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_labels = labels.labels


def _meta(r: Reader, path: PathKey, default_ns: str, namespaced: bool,
          name_required: bool = True, name_check=_subdomain_check) -> ObjectMeta:
    r.mapping(path, kinds.META_SUPPORTED, kinds.META_KNOWN,
              required=("name",) if name_required else ())
    name = r.string(path + ("name",), "", check=name_check) or ""
    namespace = ""
    if namespaced:
        namespace = r.string(path + ("namespace",), default_ns, check=_label_check) or default_ns
    return ObjectMeta(name, namespace, _labels(r, path + ("labels",)), _labels(r, path + ("annotations",), False))


def _container(r: Reader, path: PathKey, host_ports: set[tuple[str, str, int]],
               host_network: bool = False, volumes: dict[str, Volume] | None = None) -> Container:
    """One container; ``host_ports`` collects the pod's (protocol, hostIP, hostPort) across its
    containers, where the API server refuses a duplicate. In a ``hostNetwork`` pod a port's
    hostPort defaults to its containerPort and must equal it (the API server's defaulting and
    validation): the process binds the node's port itself."""
    r.mapping(path, kinds.CONTAINER_SUPPORTED, kinds.CONTAINER_KNOWN, required=("name", "image"))
    ports = []
    for i, _ in enumerate(r.seq(path + ("ports",))):
        p = path + ("ports", i)
        r.mapping(p, kinds.PORT_SUPPORTED, kinds.PORT_KNOWN, required=("containerPort",))
        proto = r.string(p + ("protocol",), "TCP")
        if proto not in ("TCP", "UDP", "SCTP"):
            r.fail(p + ("protocol",), f"unsupported value {proto!r}: TCP, UDP or SCTP")
        pname = r.string(p + ("name",), "", check=lambda v: validation.check_port_name(v) if v else None)
        host_port = r.integer(p + ("hostPort",), 0, 1, 65535) or 0
        container_port = r.integer(p + ("containerPort",), 0, 1, 65535) or 0
        if host_network and container_port:
            if host_port and host_port != container_port:
                r.fail(p + ("hostPort",), "must match `containerPort` when `hostNetwork` is true")
            host_port = container_port
        host_ip = r.string(p + ("hostIP",), "")
        if host_ip:
            try:
                ipaddress.IPv4Address(host_ip)
            except ValueError:
                r.fail(p + ("hostIP",), f"{host_ip!r}: must be a valid IPv4 address")
                host_ip = ""
        key = (proto, host_ip or "0.0.0.0", host_port)
        if host_port and key in host_ports:
            r.fail(p + ("hostPort",), f"Duplicate value: \"{host_port}/{proto}\"")
        host_ports.add(key)
        ports.append(ContainerPort(container_port, pname or "", proto, host_port, "" if host_ip == "0.0.0.0" else host_ip))
    env, env_from = parse_env(r, path)

    def strings(key: str) -> tuple[str, ...]:
        items = r.seq(path + (key,))
        for i, item in enumerate(items):
            if not isinstance(item, str):
                r.fail(path + (key, i), f"expected a string, got {item!r} (quote it)")
        return tuple(str(x) for x in items)
    name = r.string(path + ("name",), "", check=_label_check) or ""
    image = r.string(path + ("image",), "", check=lambda v: None if v and v == v.strip() and v.isprintable() else
                     f"{v!r}: must be non-empty and without leading or trailing whitespace") or ""
    names = {p.name for p in ports if p.name}
    r.string(path + ("imagePullPolicy",), "", check=lambda v: None if v in ("", *PULL_POLICIES) else
             f"unsupported value {v!r}{did_you_mean(v, PULL_POLICIES)}")
    for key, default in (("terminationMessagePath", defaults.TERMINATION_MESSAGE_PATH),
                         ("terminationMessagePolicy", "File")):
        if r.string(path + (key,), default, check=lambda v: None if v.isprintable() else f"{v!r}: not printable") != default:
            r.warnings.append(f"{r.doc.where(path + (key,))}: {dotted(path + (key,))}: accepted but not emulated; "
                              "ignored (the kubelet writes no termination message)")
    working_dir = r.string(path + ("workingDir",), "", check=lambda v: None if not v or (v.startswith("/") and v.isprintable())
                           else f"{v!r}: must be an absolute path") or ""
    return Container(name, image, strings("command"), strings("args"), env, tuple(ports), working_dir,
                     probe(r, path + ("readinessProbe",), names), probe(r, path + ("livenessProbe",), names),
                     resources(r, path + ("resources",)), security(r, path + ("securityContext",), True),
                     pre_stop(r, path + ("lifecycle",), names), r.typed(path + ("stdin",), bool, False),
                     r.typed(path + ("stdinOnce",), bool, False), r.typed(path + ("tty",), bool, False), env_from,
                     parse_mounts(r, path + ("volumeMounts",), volumes or {}))


def _priority(r: Reader, path: PathKey, raw: dict) -> None:
    """``priority`` and ``preemptionPolicy`` as the Priority admission plugin checks them: a
    pod may carry them (every pod read back does) only as the plugin computes them from its
    PriorityClass (none: 0, PreemptLowerPriority)."""
    computed = podadmission.computed_priority(raw)
    given = r.typed(path + ("priority",), int, None)
    if given is not None and computed is not None and given != computed:
        r.fail(path + ("priority",), f"Forbidden: the integer value of priority ({given}) must not be provided in "
                                     f"pod spec; priority admission controller computed {computed} from the given "
                                     "PriorityClass name")
    policy = r.string(path + ("preemptionPolicy",), "PreemptLowerPriority")
    if policy not in podadmission.PREEMPTION_POLICIES:
        r.fail(path + ("preemptionPolicy",), f'Unsupported value: "{policy}": supported values: '
                                             '"Never", "PreemptLowerPriority"')
    elif policy != "PreemptLowerPriority" and computed is not None:
        r.fail(path + ("preemptionPolicy",), f"Forbidden: the string value of PreemptionPolicy ({policy}) must not "
                                             "be provided in pod spec; priority admission controller computed "
                                             "PreemptLowerPriority from the given PriorityClass name")


def _pod_spec(r: Reader, path: PathKey) -> PodSpec:
    raw = r.mapping(path, kinds.POD_SPEC_SUPPORTED, kinds.POD_SPEC_KNOWN, required=("containers",))
    host_ports: set[tuple[str, str, int]] = set()
    host_network = r.typed(path + ("hostNetwork",), bool, False)
    names = {c.get("name") for c in r.seq(path + ("containers",)) if isinstance(c, dict)}
    volumes = parse_volumes(r, path + ("volumes",), {n for n in names if isinstance(n, str)})
    containers = tuple(_container(r, path + ("containers", i), host_ports, host_network, {v.name: v for v in volumes})
                       for i, _ in enumerate(r.seq(path + ("containers",))))
    check_shared_mounts(r, path + ("containers",), list(enumerate(c.mounts for c in containers)))
    check_resource_refs(r, path + ("containers",), containers)
    for key in ("serviceAccountName", "serviceAccount"):  # the ServiceAccount's token and admission use it
        r.string(path + (key,), "", check=lambda v: validation.check_dns1123_subdomain(v) if v else None)
    r.typed(path + ("automountServiceAccountToken",), bool, None)
    _priority(r, path, raw)
    if r.string(path + ("schedulerName",), "default-scheduler") != "default-scheduler":  # (the API's default, read back)
        r.warnings.append(f"{r.doc.where(path + ('schedulerName',))}: spec.schedulerName: not emulated; k8semu's scheduler places the pod")
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
                                      r.string(p + ("value",), ""), r.string(p + ("effect",), ""),
                                      r.integer(p + ("tolerationSeconds",), None, -(2**63), 2**63 - 1)))
    restart = r.string(path + ("restartPolicy",), "Always")
    if restart not in ("Always", "OnFailure", "Never"):
        r.fail(path + ("restartPolicy",), f"unsupported value {restart!r}: Always, OnFailure or Never")
    dns_policy = r.string(path + ("dnsPolicy",), "ClusterFirst")
    _dns_config(r, path + ("dnsConfig",))
    if dns_policy == "None" and not r.get(path + ("dnsConfig", "nameservers")):
        r.fail(path + ("dnsConfig",), "must provide at least one DNS nameserver when `dnsPolicy` is None")
    policies = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
    if dns_policy not in policies:
        r.fail(path + ("dnsPolicy",), f"unsupported value {dns_policy!r}{did_you_mean(dns_policy, policies)}")
    aliases = []
    for i, _ in enumerate(r.seq(path + ("hostAliases",))):
        p = path + ("hostAliases", i)
        r.mapping(p, {"ip", "hostnames"}, required=("ip",))
        ip = r.string(p + ("ip",), "", check=lambda v: None if validation.is_ip(v) else f"{v!r} must be a valid IP address")
        hostnames = []
        for j, host in enumerate(r.seq(p + ("hostnames",))):
            message = validation.check_dns1123_subdomain(host)
            if message:
                r.fail(p + ("hostnames", j), message)
            else:
                hostnames.append(host)
        if ip:
            aliases.append((ip, tuple(hostnames)))
    node_selector = r.string_map(path + ("nodeSelector",))
    for key, value in node_selector.items():
        if message := validation.check_qualified_name(key) or validation.check_label_value(value):
            r.fail(path + ("nodeSelector", key), message)
    return PodSpec(containers, r.string(path + ("nodeName",), "", check=lambda v: _subdomain_check(v) if v else None) or "",
                   node_selector, tuple(tolerations), restart, r.string(path + ("hostname",), "", check=_label_check),
                   r.string(path + ("subdomain",), "", check=_label_check), dns_policy, defaults.pod_spec(raw),
                   tuple(aliases),
                   security(r, path + ("securityContext",), False),
                   r.integer(path + ("terminationGracePeriodSeconds",), 30, minimum=0, maximum=MAX_INT64),
                   host_network=host_network, volumes=volumes)


def _dns_config(r: Reader, path: PathKey) -> None:
    """dnsConfig as the API server validates it, and words that cannot break resolv.conf."""
    if r.get(path) is None:
        return
    r.mapping(path, {"nameservers", "searches", "options"})
    servers = r.seq(path + ("nameservers",))
    if len(servers) > MAX_NAMESERVERS:
        r.fail(path + ("nameservers",), f"must not have more than {MAX_NAMESERVERS} nameservers")
    for i, server in enumerate(servers):
        if not validation.is_ip(server):
            r.fail(path + ("nameservers", i), f"{server!r}: must be a valid IP address")
    searches = r.seq(path + ("searches",))
    if len(searches) > MAX_SEARCHES:
        r.fail(path + ("searches",), f"must not have more than {MAX_SEARCHES} search paths")
    for i, search in enumerate(searches):
        if message := validation.check_search_path(search):
            r.fail(path + ("searches", i), message)
    if sum(len(str(x)) for x in searches) + len(searches) > MAX_SEARCH_CHARS:
        r.fail(path + ("searches",), f"must not have more than {MAX_SEARCH_CHARS} characters (including spaces)")
    for i, _ in enumerate(r.seq(path + ("options",))):
        p = path + ("options", i)
        r.mapping(p, {"name", "value"}, required=("name",))
        r.string(p + ("name",), "", check=lambda v: validation.check_resolv_token(v, "option name"))
        if r.get(p + ("value",)) is not None:
            r.string(p + ("value",), "", check=lambda v: validation.check_resolv_token(v, "option value"))


def _template(r: Reader, path: PathKey) -> PodTemplate:
    raw = r.mapping(path, kinds.TEMPLATE_SUPPORTED, required=("spec",))
    r.mapping(path + ("metadata",), kinds.META_SUPPORTED, kinds.META_KNOWN)
    spec = _pod_spec(r, path + ("spec",))
    return PodTemplate(_labels(r, path + ("metadata", "labels")),
                       _labels(r, path + ("metadata", "annotations"), False),
                       spec, {**raw, "spec": spec.raw})  # the hash is over the defaulted template


def _workload(r: Reader, meta: ObjectMeta, known: set[str], source,
              supported: set[str] = kinds.WORKLOAD_SPEC_SUPPORTED) -> tuple:
    path: PathKey = ("spec",)
    r.mapping(path, supported, known, required=("selector", "template"))
    replicas = r.integer(path + ("replicas",), 1, 0, 10000)
    selector = labels.selector(r, path + ("selector",)) or selector_from_dict({})
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


def _strategy(r: Reader, path: PathKey) -> dict:
    """``spec.strategy`` of a Deployment, refused where the API server refuses it."""
    r.mapping(path, {"type", "rollingUpdate"}, ())
    kind = r.string(path + ("type",), "RollingUpdate")
    if kind not in ("RollingUpdate", "Recreate"):
        r.fail(path + ("type",), f'Unsupported value: "{kind}": supported values: "Recreate", "RollingUpdate"')
        return {}
    if kind == "Recreate":
        if r.get(path + ("rollingUpdate",)) is not None:
            r.fail(path + ("rollingUpdate",), "Forbidden: may not be specified when strategy `type` is 'Recreate'")
        return {"strategy": kind}
    rolling = path + ("rollingUpdate",)
    r.mapping(rolling, {"maxSurge", "maxUnavailable"}, ())
    surge = disruption.int_or_percent(r, rolling + ("maxSurge",), at_most_100=False)
    unavailable = disruption.int_or_percent(r, rolling + ("maxUnavailable",))
    surge = "25%" if surge is None else surge
    unavailable = "25%" if unavailable is None else unavailable
    if str(surge).rstrip("%") == "0" and str(unavailable).rstrip("%") == "0":
        r.fail(rolling + ("maxUnavailable",), "Invalid value: 0: may not be 0 when `maxSurge` is 0")
    return {"strategy": kind, "max_surge": surge, "max_unavailable": unavailable}


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
    if kind not in ("Endpoints", "EndpointSlice", "Secret", "ConfigMap", "ServiceAccount") and kind not in RBAC_KINDS:
        r.mapping((), kinds.TOP_SUPPORTED, kinds.TOP_KNOWN, required=("metadata",))
    source = doc.where(("metadata", "name"))
    meta = _meta(r, ("metadata",), default_ns, namespaced=kind not in CLUSTER_SCOPED,
                 name_check=validation.check_path_segment_name if kind in RBAC_KINDS else _subdomain_check)
    obj: KubeObject = None
    if kind == "Namespace":
        r.mapping(("spec",), (), kinds.NAMESPACE_SPEC_KNOWN)
        if meta.name and validation.is_dns1123_subdomain(meta.name) and not validation.is_dns1123_label(meta.name):
            r.fail(("metadata", "name"), _label_check(meta.name) or "")
        obj = Namespace(meta, source)
    elif kind == "Pod":
        obj = Pod(meta, _pod_spec(r, ("spec",)), source)
    elif kind == "Deployment":
        min_ready = r.integer(("spec", "minReadySeconds"), 0, 0, 2**31 - 1) or 0
        deadline = r.integer(("spec", "progressDeadlineSeconds"), 600, 1, 2**31 - 1) or 600
        if deadline <= min_ready:  # the API server's ValidateDeploymentSpec
            r.fail(("spec", "progressDeadlineSeconds"), "must be greater than minReadySeconds")
        obj = Deployment(*_workload(r, meta, kinds.DEPLOYMENT_SPEC_KNOWN, source, kinds.DEPLOYMENT_SPEC_SUPPORTED),
                         revision_history_limit=r.integer(("spec", "revisionHistoryLimit"), 10, 0, 2**31 - 1),
                         min_ready=min_ready, progress_deadline=deadline, **_strategy(r, ("spec", "strategy")))
    elif kind == "ReplicaSet":
        obj = ReplicaSet(*_workload(r, meta, kinds.REPLICASET_SPEC_KNOWN, source, kinds.REPLICASET_SPEC_SUPPORTED),
                         min_ready=r.integer(("spec", "minReadySeconds"), 0, 0, 2**31 - 1))
    elif kind == "StatefulSet":
        supported, known = workloads.SPECS[kind]
        obj = workloads.parse_statefulset(r, *_workload(r, meta, known, source, supported))
    elif kind == "DaemonSet":
        supported, known = workloads.SPECS[kind]
        ds_meta, _, selector, template, _ = _workload(r, meta, known, source, supported)
        obj = workloads.parse_daemonset(r, ds_meta, selector, template, source)
    elif kind in ("Job", "CronJob"):
        spec: PathKey = ("spec",) if kind == "Job" else ("spec", "jobTemplate", "spec")
        if kind == "CronJob":
            r.mapping(("spec",), workloads.SPECS[kind][0], required=("schedule", "jobTemplate"))
            r.mapping(("spec", "jobTemplate"), {"metadata", "spec"}, required=("spec",))
        r.mapping(spec, *workloads.SPECS["Job"], required=("template",))
        obj = workloads.parse_job(r, meta, _template(r, spec + ("template",)), source, spec)
        if kind == "CronJob":
            obj = workloads.parse_cronjob(r, meta, obj, source)
    elif kind == "Service":
        obj = services.parse_service(r, meta, source)
        if meta.name and not validation.is_dns1035_label(meta.name):
            r.fail(("metadata", "name"), validation.check_dns1035_label(meta.name) or "")
    elif kind in PARSERS:
        obj = PARSERS[kind](r, meta, source)
    elif kind in RBAC_KINDS:
        obj = rbac.parse(r, kind, meta, source)
    return ([obj] if not r.problems else []), r.problems, r.warnings


# the kinds whose parser needs nothing but the document, its metadata and where it is
PARSERS = {"Endpoints": services.parse_endpoints, "EndpointSlice": services.parse_endpoint_slice,
           "NetworkPolicy": netpol.parse_network_policy, "Ingress": ingress.parse_ingress,
           "IngressClass": ingress.parse_ingress_class, "Secret": ingress.parse_secret,
           "ConfigMap": configmaps.parse_config_map, "ServiceAccount": configmaps.parse_service_account,
           "PodDisruptionBudget": disruption.parse_pod_disruption_budget, "IPPool": calicopool.parse_ip_pool,
           "BGPConfiguration": calicobgp.parse_bgp_configuration, "BGPPeer": calicobgp.parse_bgp_peer}


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


def load_manifest_documents(paths: list[str]) -> list[Document]:
    """Read manifest files into located documents (every file's problems at once).

    Raises:
        SpecError: unreadable or malformed files.
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
    return docs


def load_manifest_files(paths: list[str], default_ns: str = "default") -> ManifestSet:
    """Read manifest files (``kubectl apply -f`` for each).

    Raises:
        SpecError: unreadable, malformed or invalid manifests.
    """
    return parse_documents(load_manifest_documents(paths), default_ns)
