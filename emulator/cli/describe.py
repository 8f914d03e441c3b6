"""``k8semu describe``: kubectl's describe layout for Services (others follow with their issues)."""
from __future__ import annotations

import time

from emulator.api.tables import epoch, human_age


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
    rows.append(("Internal Traffic Policy", spec.get("internalTrafficPolicy", "Cluster")))
    if spec.get("healthCheckNodePort"):
        rows.append(("HealthCheck NodePort", str(spec["healthCheckNodePort"])))
    rows.append(("Events", "<none>"))
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join((f"{k}:" if k else "").ljust(width) + v for k, v in rows)


def _selector_text(sel: dict | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted(sel.get("matchLabels", {}).items())]
    parts += [f"{e['key']} {e['operator'].lower()} ({','.join(e.get('values', []))})" for e in sel.get("matchExpressions", [])]
    return ",".join(parts) or "<none>"


def describe_policy(pol: dict) -> str:
    """kubectl's NetworkPolicy description, plus the pods it selects right now."""
    meta, spec = pol["metadata"], pol["spec"]
    lines = [f"Name:         {meta['name']}", f"Namespace:    {meta['namespace']}",
             f"Created on:   {meta['creationTimestamp']}", f"Labels:       {_labels(meta.get('labels'))[0]}",
             f"Annotations:  {_labels(meta.get('annotations'))[0]}", "Spec:"]
    sel = _selector_text(spec.get("podSelector"))
    lines.append(f"  PodSelector:     {sel}" + (" (Allowing the specific traffic to all pods in this namespace)"
                                                 if sel == "<none>" else ""))
    for direction, peer_key, verb in (("Ingress", "from", "From"), ("Egress", "to", "To")):
        rules = spec.get(direction.lower(), [])
        if direction not in spec["policyTypes"]:
            lines.append(f"  Not affecting {direction.lower()} traffic")
            continue
        if not rules:
            lines.append(f"  Allowing {direction.lower()} traffic:")
            lines.append(f"    <none> (Selected pods are isolated for {direction.lower()} connectivity)")
            continue
        lines.append(f"  Allowing {direction.lower()} traffic:")
        for i, rule in enumerate(rules):
            if i:
                lines.append("    ----------")
            ports = rule.get("ports", [])
            for p in ports or [None]:
                lines.append("    To Port: " + ("<any> (traffic allowed to all ports)" if p is None else
                             f"{p.get('port', '<any>')}{'-' + str(p['endPort']) if 'endPort' in p else ''}/{p['protocol']}"))
            lines.append(f"    {verb}:")
            peers = rule.get(peer_key, [])
            if not peers:
                lines.append("      <any> (traffic not restricted by source)" if direction == "Ingress" else
                             "      <any> (traffic not restricted by destination)")
            for peer in peers:
                if "ipBlock" in peer:
                    lines.append(f"      IPBlock:\n        CIDR: {peer['ipBlock']['cidr']}\n"
                                 f"        Except: {', '.join(peer['ipBlock'].get('except', []))}")
                if "namespaceSelector" in peer:
                    lines.append(f"      NamespaceSelector: {_selector_text(peer['namespaceSelector'])}")
                if "podSelector" in peer:
                    lines.append(f"      PodSelector: {_selector_text(peer['podSelector'])}")
    lines.append(f"  Policy Types: {', '.join(spec['policyTypes'])}")
    selected = pol.get("status", {}).get("k8semu.io/selectedPods", [])
    lines.append(f"Selected pods:  {', '.join(selected) or '<none>'}")
    return "\n".join(lines)


def describe_ingress(ing: dict, endpoints: dict[str, dict], problems: list[str] | None = None) -> str:
    """kubectl's Ingress description: rules with each backend's endpoints."""
    meta, spec = ing["metadata"], ing["spec"]

    def backend(b: dict) -> str:
        svc = b["service"]["name"]
        port = b["service"]["port"].get("number", b["service"]["port"].get("name"))
        ep = endpoints.get(svc)
        if ep is None:
            return f"{svc}:{port} (<error: endpoints \"{svc}\" not found>)"
        addrs = [f"{a['ip']}:{p['port']}" for s in ep.get("subsets", []) for p in s.get("ports", [])
                 for a in s.get("addresses", [])]
        return f"{svc}:{port} ({','.join(addrs) or '<none>'})"
    address = ",".join(x["ip"] for x in ing["status"]["loadBalancer"].get("ingress", []))
    lines = [f"Name:             {meta['name']}", f"Labels:           {_labels(meta.get('labels'))[0]}",
             f"Namespace:        {meta['namespace']}", f"Address:          {address}",
             f"Ingress Class:    {spec.get('ingressClassName', '<none>')}",
             f"Default backend:  {backend(spec['defaultBackend']) if 'defaultBackend' in spec else '<default>'}"]
    for t in spec.get("tls", []):
        lines.append(f"TLS:\n  {t['secretName']} terminates {','.join(t['hosts'])}")
    lines += ["Rules:", "  Host        Path  Backends", "  ----        ----  --------"]
    for rule in spec.get("rules", []):
        lines.append(f"  {rule.get('host', '*')}")
        for p in rule["http"]["paths"]:
            lines.append(f"              {p['path']}   {backend(p['backend'])}")
    annotations = meta.get("annotations", {})
    shown = "\n                  ".join(f"{k}: {v}" for k, v in annotations.items())
    lines.append("Annotations:      " + (shown or "<none>"))
    if problems:
        lines += ["Events:", "  Type     Reason  From                      Message",
                  "  ----     ------  ----                      -------"]
        lines += [f"  Warning  Sync    nginx-ingress-controller  {p.split(': ', 1)[1]}" for p in problems]
    else:
        lines.append("Events:           <none>")
    return "\n".join(lines)


def events_section(events: list[dict]) -> list[str]:
    """kubectl's Events table at the end of describe."""
    if not events:
        return ["Events:  <none>"]
    now = time.time()
    lines = ["Events:", "  Type     Reason                  Age    From              Message",
             "  ----     ------                  ----   ----              -------"]
    for e in events[-20:]:
        last, first = now - epoch(e["lastTimestamp"]), now - epoch(e["firstTimestamp"])
        age = human_age(last) + (f" (x{e['count']} over {human_age(first)})" if e["count"] > 1 else "")
        lines.append(f"  {e['type']:<8} {e['reason']:<23} {age:<6} {e['source']['component']:<17} {e['message']}")
    return lines


def describe_pod(pod: dict, events: list[dict], network: dict | None = None) -> str:
    """kubectl's lines, then (``cni: flannel``) the result of the CNI ADD that made the pod's
    network: its interfaces, addresses and routes, as the plugins reported them."""
    meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
    lines = [f"Name:             {meta['name']}", f"Namespace:        {meta['namespace']}",
             f"Node:             {spec.get('nodeName', '<none>')}/{status.get('hostIP', '')}",
             f"Labels:           {_labels(meta.get('labels'))[0]}"]
    lines += [f"                  {x}" for x in _labels(meta.get("labels"))[1:]]
    lines += [f"Status:           {status['phase']}"]
    if status.get("reason"):
        lines.append(f"Reason:           {status['reason']}")
    if status.get("message"):
        lines.append(f"Message:          {status['message']}")
    lines += [f"IP:               {status.get('podIP', '')}", "Containers:"]
    for c in status.get("containerStatuses", []):
        lines.append(f"  {c['name']}:")
        lines.append(f"    Image:          {c['image']}")
        state, detail = next(iter(c["state"].items()))
        lines.append(f"    State:          {state.capitalize()}")
        if detail.get("reason"):
            lines.append(f"      Reason:       {detail['reason']}")
        if "exitCode" in detail:
            lines.append(f"      Exit Code:    {detail['exitCode']}")
        if c.get("lastState"):
            last, info = next(iter(c["lastState"].items()))
            lines.append(f"    Last State:     {last.capitalize()}")
            lines.append(f"      Reason:       {info.get('reason', '')}")
            lines.append(f"      Exit Code:    {info.get('exitCode', '')}")
        lines.append(f"    Ready:          {'True' if c['ready'] else 'False'}")
        lines.append(f"    Restart Count:  {c['restartCount']}")
        lines += _mounts(next((x for x in spec.get("containers", []) if x.get("name") == c["name"]), {}))
    lines.append("Conditions:")
    lines.append("  Type              Status")
    lines += [f"  {cond['type']:<17} {cond['status']}" for cond in status.get("conditions", [])]
    lines += _volumes(spec.get("volumes") or [])
    lines.append(f"QoS Class:        {status.get('qosClass', 'BestEffort')}")
    if network:
        lines += _network(network)
    return "\n".join(lines + events_section(events))


def _network(result: dict) -> list[str]:
    """The CNI result (k8semu's section: kubectl has no such lines)."""
    lines = [f"CNI Result (cniVersion {result.get('cniVersion', '?')}):", "  Interfaces:"]
    ifaces = result.get("interfaces") or []
    for i, iface in enumerate(ifaces):
        where = iface.get("sandbox") or "node"
        lines.append(f"    [{i}] {iface.get('name', '')}  mac {iface.get('mac', '')}  in {where}")
    lines.append("  IPs:")
    for ip in result.get("ips") or []:
        index = ip.get("interface")
        name = ifaces[index]["name"] if isinstance(index, int) and 0 <= index < len(ifaces) else "?"
        lines.append(f"    {ip.get('address', '')}  gateway {ip.get('gateway', '-')}  on {name}")
    lines.append("  Routes:")
    lines += [f"    {r.get('dst', '')}" + (f" via {r['gw']}" if r.get("gw") else "") for r in result.get("routes") or []]
    return lines


def _mounts(container: dict) -> list[str]:
    """kubectl's Mounts lines: ``/path from volume (rw|ro[,path="sub"])``."""
    out = []
    for m in sorted(container.get("volumeMounts") or [], key=lambda m: str(m.get("mountPath"))):
        flags = "ro" if m.get("readOnly") else "rw"
        if m.get("subPath"):
            flags += f',path="{m["subPath"]}"'
        out.append(f"      {m.get('mountPath')} from {m.get('name')} ({flags})")
    return ["    Mounts:" + ("         <none>" if not out else "")] + out


VOLUME_TYPES = {"emptyDir": "EmptyDir (a temporary directory that shares a pod's lifetime)",
                "configMap": "ConfigMap (a volume populated by a ConfigMap)",
                "secret": "Secret (a volume populated by a Secret)",
                "downwardAPI": "DownwardAPI (a volume populated by information about the pod)",
                "projected": "Projected (a volume that contains injected data from multiple sources)"}


def _volumes(volumes: list[dict]) -> list[str]:
    """kubectl's Volumes section, saying which types k8semu does not emulate."""
    lines = ["Volumes:" + ("          <none>" if not volumes else "")]
    for v in volumes:
        kind = next((k for k in v if k != "name"), "")
        source = v.get(kind) if isinstance(v.get(kind), dict) else {}
        lines.append(f"  {v.get('name')}:")
        lines.append(f"    Type:       {VOLUME_TYPES.get(kind, kind + ' (not emulated: an empty folder of the pod)')}")
        if kind in ("configMap", "secret"):
            lines.append(f"    Name:       {source.get('name') or source.get('secretName', '')}")
            lines.append(f"    Optional:   {str(bool(source.get('optional'))).lower()}")
        elif kind == "emptyDir":
            lines.append(f"    Medium:     {source.get('medium', '')}")
    return lines
