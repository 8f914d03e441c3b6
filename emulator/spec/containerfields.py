"""A container's probes, preStop hook, resources and securityContext -> model, with the API
server's checks (pkg/apis/core/validation: validateProbe, validateLifecycle,
ValidateResourceRequirements, validateSecurityContext) and k8semu's refusals (capabilities that
would let a pod reach the machine)."""
from __future__ import annotations

import re

from emulator.model import quantity
from emulator.model.pod import Probe, Resources, SecurityContext
from emulator.spec import kinds
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader

CAPABILITY = re.compile(r"(CAP_)?[A-Z_]+")


def security(r: Reader, path: PathKey, container: bool) -> SecurityContext:
    if r.get(path) is None:
        return SecurityContext()
    supported = {"runAsUser", "runAsGroup"} | ({"privileged", "capabilities"} if container else set())
    known = {"runAsNonRoot", "seLinuxOptions", "seccompProfile", "appArmorProfile", "windowsOptions",
             "supplementalGroups", "supplementalGroupsPolicy", "fsGroup", "fsGroupChangePolicy", "sysctls"}
    if container:
        known |= {"allowPrivilegeEscalation", "readOnlyRootFilesystem", "procMount"}
    r.mapping(path, supported, known)
    caps: dict[str, tuple[str, ...]] = {}
    for key in ("add", "drop"):
        names = []
        for i, item in enumerate(r.seq(path + ("capabilities", key))):
            if not isinstance(item, str) or not CAPABILITY.fullmatch(item):
                r.fail(path + ("capabilities", key, i), f"{item!r} is not a capability name (like NET_ADMIN)")
                continue
            names.append(item.removeprefix("CAP_"))
        caps[key] = tuple(names)
    if r.get(path + ("capabilities",)) is not None:
        r.mapping(path + ("capabilities",), {"add", "drop"})
    return SecurityContext(bool(r.typed(path + ("privileged",), bool, False)), caps["add"], caps["drop"],
                           r.integer(path + ("runAsUser",), None, 0, 2**31 - 1),
                           r.integer(path + ("runAsGroup",), None, 0, 2**31 - 1))


def resources(r: Reader, path: PathKey) -> Resources:
    if r.get(path) is None:
        return Resources()
    r.mapping(path, {"limits", "requests"}, {"claims"})
    values: dict[str, int | None] = {}
    for kind in ("limits", "requests"):
        table = r.get(path + (kind,), {})
        if not isinstance(table, dict):
            r.fail(path + (kind,), "expected a mapping of resource names to quantities")
            continue
        for res, amount in table.items():
            try:
                if res == "cpu":
                    values[f"cpu_{kind}"] = quantity.millicores(amount)
                elif res == "memory":
                    values[f"memory_{kind}"] = quantity.bytes_of(amount)
                else:
                    quantity.parse(amount)
                    r.warnings.append(f"{r.doc.where(path + (kind, res))}: {res}: accepted but not emulated; ignored")
            except quantity.QuantityError as exc:
                r.fail(path + (kind, res), str(exc))
    out = Resources(values.get("cpu_limits"), values.get("memory_limits"),
                    values.get("cpu_requests"), values.get("memory_requests"))
    for res, limit, request in (("cpu", out.cpu_limit, out.cpu_request), ("memory", out.memory_limit, out.memory_request)):
        if limit is not None and request is not None and request > limit:
            r.fail(path + ("requests", res), f"must be less than or equal to {res} limit")
    if out.cpu_request is None and out.cpu_limit is not None:  # the API server defaults requests to limits
        out = Resources(out.cpu_limit, out.memory_limit, out.cpu_limit, out.memory_request)
    if out.memory_request is None and out.memory_limit is not None:
        out = Resources(out.cpu_limit, out.memory_limit, out.cpu_request, out.memory_limit)
    return out


def pre_stop(r: Reader, path: PathKey, port_names: set[str]) -> Probe | None:
    """``lifecycle.preStop`` (exec, httpGet or sleep), run by the kubelet before SIGTERM;
    ``postStart`` is accepted with a warning."""
    if r.get(path) is None:
        return None
    r.mapping(path, {"preStop"}, {"postStart", "stopSignal"})
    hook = path + ("preStop",)
    if r.get(hook) is None:
        return None
    data = r.mapping(hook, {"exec", "httpGet", "sleep"}, {"tcpSocket"})
    if "sleep" in data:
        r.mapping(hook + ("sleep",), {"seconds"}, required=("seconds",))
        return Probe("sleep", seconds=r.integer(hook + ("sleep", "seconds"), 0, 0, 2 ** 31 - 1) or 0)
    if not ("exec" in data or "httpGet" in data):
        return None  # tcpSocket: deprecated for hooks and ignored by the kubelet too (warned above)
    return probe(r, hook, port_names)


def probe(r: Reader, path: PathKey, port_names: set[str]) -> Probe | None:
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
    command: tuple[str, ...] = ()
    if action == "exec":
        items = r.seq(ap + ("command",))
        for i, item in enumerate(items):
            if not isinstance(item, str):  # the API server's type check: []string
                r.fail(ap + ("command", i), f"expected a string, got {item!r} (quote it)")
        command = tuple(str(x) for x in items)
    if action != "exec" and isinstance(port, int) and not 1 <= port <= 65535:
        r.fail(ap + ("port",), f"must be between 1 and 65535, inclusive, got {port}")
    if action == "httpGet":
        r.string(ap + ("path",), "/", check=lambda v: None if v.isprintable() and " " not in v else
                 f"{v!r}: a URL path without spaces or control characters")
        r.string(ap + ("scheme",), "HTTP", check=lambda v: None if v in ("HTTP", "HTTPS") else
                 f"unsupported value {v!r}: \"HTTP\", \"HTTPS\"")
    return Probe(action, port, str(r.get(ap + ("path",), "/")), str(r.get(ap + ("scheme",), "HTTP")),
                 command, r.integer(path + ("initialDelaySeconds",), 0, 0) or 0,
                 r.integer(path + ("periodSeconds",), 10, 1) or 10, r.integer(path + ("timeoutSeconds",), 1, 1) or 1,
                 r.integer(path + ("successThreshold",), 1, 1) or 1, r.integer(path + ("failureThreshold",), 3, 1) or 3)
