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
    return {"namespaces": sorted(state.namespaces()), "services": services, "pods": pods}
