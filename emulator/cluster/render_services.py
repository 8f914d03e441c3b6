"""Service, Endpoints and EndpointSlice in the API server's shape."""
from __future__ import annotations

from emulator.cluster.apimeta import meta as _meta
from emulator.cluster.store import ClusterState


def service_object(rec, state: ClusterState) -> dict:
    svc = rec.obj
    alloc = state.alloc.by_service.get(svc.key)
    ports = []
    for i, sp in enumerate(svc.ports):
        port = {"protocol": sp.protocol, "port": sp.port, "targetPort": sp.target()}
        if sp.name:
            port = {"name": sp.name, **port}
        if alloc and i < len(alloc.node_ports):
            port["nodePort"] = alloc.node_ports[i]
        ports.append(port)
    spec: dict = {"type": svc.type}
    if svc.type == "ExternalName":
        spec["externalName"] = svc.external_name
    else:
        ip = "None" if svc.headless else (alloc.cluster_ip if alloc else "")
        spec.update({"clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"],
                     "ipFamilyPolicy": "SingleStack"})
    if ports:
        spec["ports"] = ports
    if svc.selector is not None:
        spec["selector"] = dict(svc.selector)
    spec["sessionAffinity"] = svc.session_affinity
    if svc.session_affinity == "ClientIP":
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": svc.affinity_timeout}}
    if svc.type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = svc.external_traffic_policy
    if alloc and alloc.health_check_node_port:
        spec["healthCheckNodePort"] = alloc.health_check_node_port
    spec["internalTrafficPolicy"] = svc.internal_traffic_policy
    if svc.publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    if svc.load_balancer_class:
        spec["loadBalancerClass"] = svc.load_balancer_class
    if svc.external_ips:
        spec["externalIPs"] = list(svc.external_ips)
    if svc.source_ranges:
        spec["loadBalancerSourceRanges"] = list(svc.source_ranges)
    status: dict = {"loadBalancer": {}}
    if alloc and alloc.lb_ip:
        status["loadBalancer"] = {"ingress": [{"ip": alloc.lb_ip, "ipMode": "VIP"}]}
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(rec), "spec": spec, "status": status}


def _address(a) -> dict:
    out: dict = {"ip": a.ip}
    if a.hostname:
        out["hostname"] = a.hostname
    if a.node:
        out["nodeName"] = a.node
    if a.pod:
        out["targetRef"] = {"kind": "Pod", "name": a.pod}
    return out


def _ports(ports) -> list[dict]:
    return [{**({"name": p.name} if p.name else {}), "port": p.port, "protocol": p.protocol} for p in ports]


def endpoints_object(rec) -> dict:
    subsets = []
    for s in rec.obj.subsets:
        sub: dict = {}
        if s.addresses:
            sub["addresses"] = [_address(a) for a in s.addresses]
        if s.not_ready:
            sub["notReadyAddresses"] = [_address(a) for a in s.not_ready]
        if s.ports:
            sub["ports"] = _ports(s.ports)
        subsets.append(sub)
    out = {"apiVersion": "v1", "kind": "Endpoints", "metadata": _meta(rec)}
    if subsets:
        out["subsets"] = subsets
    return out


def slice_object(rec) -> dict:
    sl = rec.obj
    endpoints = []
    for e in sl.endpoints:
        a = e.address
        ep: dict = {"addresses": [a.ip], "conditions": {"ready": e.ready, "serving": e.serving,
                                                        "terminating": e.terminating}}
        if a.node:
            ep["nodeName"] = a.node
        if a.pod:
            ep["targetRef"] = {"kind": "Pod", "name": a.pod, "namespace": sl.meta.namespace}
        endpoints.append(ep)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": _meta(rec),
            "addressType": "IPv4", "endpoints": endpoints,
            # the controller always sets a port's name, "" when the Service port has none
            # (kubectl describe dereferences it)
            "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in sl.ports]}


def objects(state: ClusterState, kind: str, namespace: str | None) -> list[dict]:
    recs = sorted(state.list(kind, namespace), key=lambda r: (r.obj.meta.namespace, r.obj.meta.name))
    if kind == "Service":
        return [service_object(r, state) for r in recs]
    if kind == "Endpoints":
        return [endpoints_object(r) for r in recs]
    return [slice_object(r) for r in recs]
