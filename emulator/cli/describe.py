"""``k8semu describe``: kubectl's describe layout for Services (others follow with their issues)."""
from __future__ import annotations


def _labels(d: dict | None) -> list[str]:
    return [f"{k}={v}" for k, v in sorted((d or {}).items())] or ["<none>"]


def describe_service(svc: dict, endpoints: dict | None) -> str:
    meta, spec = svc["metadata"], svc["spec"]
    rows: list[tuple[str, str]] = [("Name", meta["name"]), ("Namespace", meta["namespace"])]
    labels = _labels(meta.get("labels"))
    rows.append(("Labels", labels[0]))
    rows += [("", extra) for extra in labels[1:]]
    rows += [("Annotations", _labels(meta.get("annotations"))[0]),
             ("Selector", ",".join(f"{k}={v}" for k, v in sorted(spec.get("selector", {}).items())) or "<none>"),
             ("Type", spec["type"])]
    if spec["type"] == "ExternalName":
        rows.append(("External Name", spec["externalName"]))
    else:
        rows += [("IP Family Policy", spec.get("ipFamilyPolicy", "SingleStack")), ("IP Families", "IPv4"),
                 ("IP", spec.get("clusterIP", "")), ("IPs", ",".join(spec.get("clusterIPs", [])))]
    ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress", [])
    if ingress:
        rows.append(("LoadBalancer Ingress", ", ".join(i["ip"] for i in ingress)))
    eps = endpoints or {}
    for port in spec.get("ports", []):
        name = port.get("name") or "<unset>"
        rows.append(("Port", f"{name}  {port['port']}/{port['protocol']}"))
        target = port["targetPort"]
        rows.append(("TargetPort", f"{target}/{port['protocol']}"))
        if "nodePort" in port:
            rows.append(("NodePort", f"{name}  {port['nodePort']}/{port['protocol']}"))
        addrs = [f"{a['ip']}:{p['port']}" for s in eps.get("subsets", []) for p in s.get("ports", [])
                 if p.get("name", "") == port.get("name", "") and p["protocol"] == port["protocol"]
                 for a in s.get("addresses", [])]
        rows.append(("Endpoints", ",".join(addrs) or "<none>"))
    rows.append(("Session Affinity", spec.get("sessionAffinity", "None")))
    if "externalTrafficPolicy" in spec:
        rows.append(("External Traffic Policy", spec["externalTrafficPolicy"]))
    rows += [("Internal Traffic Policy", spec.get("internalTrafficPolicy", "Cluster")), ("Events", "<none>")]
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join((f"{k}:" if k else "").ljust(width) + v for k, v in rows)
