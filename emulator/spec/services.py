"""Service, Endpoints and EndpointSlice manifests -> model objects, with the API server's
validation (kinds.py lists the fields)."""
from __future__ import annotations

import ipaddress

from emulator.model import validation
from emulator.model.meta import ObjectMeta
from emulator.model.service import (NODE_PORT_RANGE, SERVICE_TYPES, EndpointAddress, EndpointPort,
                                    Endpoints, EndpointSlice, EndpointSubset, Service, ServicePort, SliceEndpoint)
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

SERVICE_SPEC = {"type", "selector", "ports", "clusterIP", "clusterIPs", "externalName",
                "sessionAffinity", "sessionAffinityConfig", "externalTrafficPolicy",
                "internalTrafficPolicy", "loadBalancerIP", "publishNotReadyAddresses", "loadBalancerClass",
                "externalIPs", "healthCheckNodePort", "loadBalancerSourceRanges"}
SERVICE_SPEC_KNOWN = {"ipFamilies", "ipFamilyPolicy", "allocateLoadBalancerNodePorts", "trafficDistribution"}
PROTOCOLS = ("TCP", "UDP", "SCTP")


def _protocol(r: Reader, path: PathKey) -> str:
    proto = r.string(path, "TCP")
    if proto not in PROTOCOLS:
        r.fail(path, f"unsupported value {proto!r}: supported values: \"SCTP\", \"TCP\", \"UDP\"")
    return proto or "TCP"


def _ip(r: Reader, path: PathKey, value: str) -> None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        r.fail(path, f"{value!r} is not a valid IPv4 address")


SPECIAL = ((ipaddress.IPv4Network("0.0.0.0/32"), "may not be unspecified (0.0.0.0)"),
           (ipaddress.IPv4Network("127.0.0.0/8"), "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
           (ipaddress.IPv4Network("169.254.0.0/16"), "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
           (ipaddress.IPv4Network("224.0.0.0/24"), "may not be in the link-local multicast range (224.0.0.0/24, "
                                                   "ff02::/10)"))


def _source_ranges(r: Reader, path: PathKey, kind: str) -> tuple[str, ...]:
    """spec.loadBalancerSourceRanges as the API server validates them (CIDRs, surrounding spaces
    trimmed, LoadBalancer Services only); IPv4 only, as the emulation is."""
    out = []
    values = r.seq(path)
    if values and kind != "LoadBalancer":
        r.fail(path, "Forbidden: may only be used when `type` is 'LoadBalancer'")
        return ()
    for i, value in enumerate(values):
        text = value.strip() if isinstance(value, str) else value
        try:
            if not isinstance(text, str) or "/" not in text:
                raise ValueError
            ipaddress.IPv4Network(text, strict=False)
            out.append(value)  # stored as written; the proxies read the network (model.service)
        except ValueError:
            r.fail(path + (i,), f"Invalid value: {value!r}: must be a list of IP ranges. For example, 10.0.0.0/24"
                   + (" (IPv6 is not emulated)" if isinstance(text, str) and ":" in text else ""))
    return tuple(out)


def _external_ips(r: Reader, path: PathKey) -> tuple[str, ...]:
    """spec.externalIPs, as the API server validates them (valid and not a special address)."""
    out = []
    for i, value in enumerate(r.seq(path)):
        here = path + (i,)
        if not isinstance(value, str):
            r.fail(here, f"expected a string, got {type(value).__name__}")
            continue
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            r.fail(here, f"{value!r}: must be a valid IPv4 address")
            continue
        special = next((why for net, why in SPECIAL if address in net), None)
        if special:
            r.fail(here, f"{value!r}: {special}")
            continue
        out.append(value)
    return tuple(out)


def parse_service(r: Reader, meta: ObjectMeta, source) -> Service:
    spec: PathKey = ("spec",)
    r.mapping(spec, SERVICE_SPEC, SERVICE_SPEC_KNOWN)
    kind = r.string(spec + ("type",), "ClusterIP")
    if kind not in SERVICE_TYPES:
        r.fail(spec + ("type",), f"unsupported value {kind!r}{did_you_mean(str(kind), SERVICE_TYPES)}")
    ports: list[ServicePort] = []
    seen: set[tuple[int, str]] = set()
    names: set[str] = set()
    entries = r.seq(spec + ("ports",))
    for i, _ in enumerate(entries):
        p = spec + ("ports", i)
        r.mapping(p, {"port", "protocol", "name", "targetPort", "nodePort"}, {"appProtocol"},
                  required=("port",))
        port = r.integer(p + ("port",), 0, 1, 65535) or 0
        proto = _protocol(r, p + ("protocol",))
        name = r.string(p + ("name",), "")
        if len(entries) > 1 and not name:
            r.fail(p + ("name",), "must be specified when a Service has more than one port")
        if name and (name in names or not validation.is_dns1123_label(name)):
            r.fail(p + ("name",), f"duplicate port name {name!r}" if name in names else
                   validation.check_dns1123_label(name) or "")
        names.add(name or "")
        if (port, proto) in seen:
            r.fail(p, f"duplicate port {port}/{proto}")
        seen.add((port, proto))
        target = r.get(p + ("targetPort",), 0)
        if isinstance(target, bool) or not isinstance(target, (int, str)):
            r.fail(p + ("targetPort",), f"expected a port number or name, got {target!r}")
            target = 0
        elif isinstance(target, int) and not 0 <= target <= 65535:
            r.fail(p + ("targetPort",), f"must be between 1 and 65535, got {target}")
        elif isinstance(target, str) and target.isdigit():
            target = int(target)
        elif isinstance(target, str) and (message := validation.check_port_name(target)):
            r.fail(p + ("targetPort",), message)
            target = 0
        node_port = r.integer(p + ("nodePort",), 0) or 0
        if node_port and kind not in ("NodePort", "LoadBalancer"):
            r.fail(p + ("nodePort",), f"may not be used when `type` is {kind!r}")
        elif node_port and not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
            r.fail(p + ("nodePort",), f"provided port is not in the valid range. The range of "
                                      f"valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}")
        ports.append(ServicePort(port, proto, name or "", target, node_port))
    cluster_ip = r.string(spec + ("clusterIP",), "")
    if cluster_ip and cluster_ip != "None":
        _ip(r, spec + ("clusterIP",), cluster_ip)
    if cluster_ip == "None" and kind in ("NodePort", "LoadBalancer"):
        r.fail(spec + ("clusterIP",), f"may not be set to 'None' for {kind} services")
    external_name = r.string(spec + ("externalName",), "", check=lambda v: validation.check_dns1123_subdomain(
        v[:-1] if v.endswith(".") else v) if v else None)
    if kind == "ExternalName" and not external_name:
        r.fail(spec + ("externalName",), "required when type is ExternalName")
    if kind != "ExternalName" and not ports and cluster_ip != "None":
        r.fail(spec + ("ports",), "Required value")
    affinity = r.string(spec + ("sessionAffinity",), "None")
    if affinity not in ("None", "ClientIP"):
        r.fail(spec + ("sessionAffinity",), f"unsupported value {affinity!r}: \"ClientIP\", \"None\"")
    timeout = r.integer(spec + ("sessionAffinityConfig", "clientIP", "timeoutSeconds"), 10800, 1, 86400)
    etp = r.string(spec + ("externalTrafficPolicy",), "Cluster")
    itp = r.string(spec + ("internalTrafficPolicy",), "Cluster")
    for path, value in ((("externalTrafficPolicy",), etp), (("internalTrafficPolicy",), itp)):
        if value not in ("Cluster", "Local"):
            r.fail(spec + path, f"unsupported value {value!r}: \"Cluster\", \"Local\"")
    lb_ip = r.string(spec + ("loadBalancerIP",), "")
    if lb_ip:
        _ip(r, spec + ("loadBalancerIP",), lb_ip)
    publish = r.typed(spec + ("publishNotReadyAddresses",), bool, False)
    lb_class = r.string(spec + ("loadBalancerClass",), "", check=lambda v: validation.check_qualified_name(v)
                        if v else None)
    if lb_class and kind != "LoadBalancer":
        r.fail(spec + ("loadBalancerClass",), "may only be used when `type` is 'LoadBalancer'")
    selector = r.string_map(spec + ("selector",)) if r.get(spec + ("selector",)) is not None else None
    for key, value in (selector or {}).items():
        if message := validation.check_qualified_name(key) or validation.check_label_value(value):
            r.fail(spec + ("selector", key), message)
    external_ips = _external_ips(r, spec + ("externalIPs",))
    health = r.integer(spec + ("healthCheckNodePort",), 0) or 0
    if health and not (kind == "LoadBalancer" and etp == "Local"):
        r.fail(spec + ("healthCheckNodePort",), "may only be set when `type` is 'LoadBalancer' and "
                                                "`externalTrafficPolicy` is 'Local'")
    elif health and not NODE_PORT_RANGE[0] <= health <= NODE_PORT_RANGE[1]:
        r.fail(spec + ("healthCheckNodePort",), f"provided port is not in the valid range. The range of "
                                                f"valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}")
    return Service(meta, kind or "ClusterIP", selector or None, tuple(ports), cluster_ip or "",
                   external_name or "", affinity or "None", timeout or 10800, etp or "Cluster",
                   itp or "Cluster", lb_ip or "", bool(publish), lb_class or "", source, external_ips,
                   health, _source_ranges(r, spec + ("loadBalancerSourceRanges",), kind or "ClusterIP"))


def _address(r: Reader, p: PathKey) -> EndpointAddress:
    r.mapping(p, {"ip", "nodeName", "hostname", "targetRef"}, required=("ip",))
    ip = r.string(p + ("ip",), "")
    _ip(r, p + ("ip",), ip)
    return EndpointAddress(ip, r.string(p + ("nodeName",), "", check=_optional(validation.check_dns1123_subdomain)),
                           str(r.get(p + ("targetRef", "name"), "")),
                           r.string(p + ("hostname",), "", check=_optional(validation.check_dns1123_label)))


def _optional(check):
    return lambda v: check(v) if v else None


def _endpoint_ports(r: Reader, path: PathKey) -> tuple[EndpointPort, ...]:
    out = []
    for i, _ in enumerate(r.seq(path)):
        p = path + (i,)
        r.mapping(p, {"port", "protocol", "name"}, {"appProtocol"}, required=("port",))
        out.append(EndpointPort(r.integer(p + ("port",), 0, 1, 65535) or 0, _protocol(r, p + ("protocol",)),
                                r.string(p + ("name",), "", check=_optional(validation.check_dns1123_label))))
    return tuple(out)


def parse_endpoints(r: Reader, meta: ObjectMeta, source) -> Endpoints:
    r.mapping((), {"apiVersion", "kind", "metadata", "subsets"})
    subsets = []
    for i, _ in enumerate(r.seq(("subsets",))):
        p: PathKey = ("subsets", i)
        r.mapping(p, {"addresses", "notReadyAddresses", "ports"})
        subsets.append(EndpointSubset(
            tuple(_address(r, p + ("addresses", j)) for j, _ in enumerate(r.seq(p + ("addresses",)))),
            tuple(_address(r, p + ("notReadyAddresses", j))
                  for j, _ in enumerate(r.seq(p + ("notReadyAddresses",)))),
            _endpoint_ports(r, p + ("ports",))))
    return Endpoints(meta, tuple(subsets), source)


def parse_endpoint_slice(r: Reader, meta: ObjectMeta, source) -> EndpointSlice:
    r.mapping((), {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"},
              required=("addressType",))
    if r.get(("addressType",)) not in ("IPv4", None):
        r.fail(("addressType",), "only IPv4 is emulated")
    endpoints = []
    for i, _ in enumerate(r.seq(("endpoints",))):
        p: PathKey = ("endpoints", i)
        r.mapping(p, {"addresses", "conditions", "nodeName", "hostname", "targetRef"}, {"zone", "hints"},
                  required=("addresses",))
        r.mapping(p + ("conditions",), {"ready", "serving", "terminating"})
        ready = r.get(p + ("conditions", "ready"), True) is not False
        terminating = r.get(p + ("conditions", "terminating"), False) is True
        serving = r.get(p + ("conditions", "serving"), ready) is not False
        for j, ip in enumerate(r.seq(p + ("addresses",))):
            _ip(r, p + ("addresses", j), str(ip))
            node = r.string(p + ("nodeName",), "", check=_optional(validation.check_dns1123_subdomain))
            hostname = r.string(p + ("hostname",), "", check=_optional(validation.check_dns1123_label))
            address = EndpointAddress(str(ip), node, str(r.get(p + ("targetRef", "name"), "")), hostname)
            endpoints.append(SliceEndpoint(address, ready, serving, terminating))
    if not meta.labels.get("kubernetes.io/service-name"):
        r.fail(("metadata", "labels"), "an EndpointSlice names its Service with the label "
                                       "kubernetes.io/service-name")
    return EndpointSlice(meta, tuple(endpoints), _endpoint_ports(r, ("ports",)), source)
