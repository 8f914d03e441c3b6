"""What the cluster DNS server needs to know, as the JSON snapshot it watches.

Services with their ports and endpoints (ready and not), namespaces, and pods' addresses.
Written by the manager whenever it changes; read by every coredns pod (``emulator.dns.server``).
"""
from __future__ import annotations

from emulator.cluster.store import ClusterState


def snapshot(state: ClusterState) -> dict:
    services = []
    for rec in sorted(state.list("Service"), key=lambda r: (r.obj.meta.namespace, r.obj.meta.name)):
        svc = rec.obj
        alloc = state.alloc.by_service.get(svc.key)
        eps = state.get("Endpoints", svc.meta.namespace, svc.meta.name)
        endpoints = []
        if eps:
            for subset in eps.obj.subsets:
                ports = [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in subset.ports]
                for ready, addresses in ((True, subset.addresses), (False, subset.not_ready)):
                    endpoints += [{"ip": a.ip, "hostname": a.hostname, "pod": a.pod, "ready": ready,
                                   "ports": ports} for a in addresses]
        services.append({
            "name": svc.meta.name, "namespace": svc.meta.namespace, "type": svc.type,
            "cluster_ip": "None" if svc.headless else (alloc.cluster_ip if alloc else ""),
            "external_name": svc.external_name,
            "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in svc.ports],
            "endpoints": endpoints})
    pods = [{"name": r.obj.meta.name, "namespace": r.obj.meta.namespace, "ip": r.status.ip}
            for r in state.pods() if r.status.ip and not r.deleting]
    return {"namespaces": sorted(state.namespaces()), "services": services, "pods": pods,
            "ingresses": ingresses(state)}


def nginx_serves(state: ClusterState):
    """A predicate: the nginx class serves this Ingress (its own, and class-less ones if nginx
    is the default class). Served Ingresses get the controller's status address, others none."""
    default = any(r.obj.is_default and r.obj.meta.name == "nginx" for r in state.list("IngressClass"))
    return lambda ing: ing.class_name == "nginx" or (not ing.class_name and default)


def ingresses(state: ClusterState) -> list[dict]:
    """The Ingresses the nginx class serves."""
    serves = nginx_serves(state)
    out = []
    for rec in sorted(state.list("Ingress"), key=lambda r: (r.obj.meta.namespace, r.obj.meta.name)):
        ing = rec.obj
        if not serves(ing):
            continue

        def backend(b):
            return {"service": b.service, "port": b.port} if b else None
        out.append({"namespace": ing.meta.namespace, "name": ing.meta.name,
                    "annotations": dict(ing.meta.annotations),
                    "tls": [{"hosts": list(hosts), "secret": secret, "pem": _tls_secret(state, ing.meta.namespace, secret)}
                            for hosts, secret in ing.tls],
                    "default_backend": backend(ing.default_backend),
                    "rules": [{"host": r.host, "paths": [{"path": p.path, "path_type": p.path_type,
                                                          "backend": backend(p.backend)} for p in r.paths]}
                              for r in ing.rules]})
    return out


def _tls_secret(state: ClusterState, namespace: str, name: str) -> dict | None:
    """A kubernetes.io/tls Secret's certificate and key as text, or None if it is not one."""
    import base64
    rec = state.get("Secret", namespace, name)
    if rec is None or rec.obj.type != "kubernetes.io/tls":
        return None
    try:
        return {k: base64.b64decode(rec.obj.data[k]).decode() for k in ("tls.crt", "tls.key")}
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
