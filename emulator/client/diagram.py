"""The cluster as a picture (``k8semu diagram``, and the web view's drawing): nodes as boxes
holding their pods, Services joined to their endpoints, Ingresses to their Services, external
hosts outside; colour is state. Graphviz draws it (``dot``, Debian's graphviz): a well-kept
layout engine, nothing fetched at run time, and the same SVG serves the page and the slides.

The DOT text is built here from the API's objects, every string through ``quote``: names are
Kubernetes names, but a label value or an Ingress host reaches the file too, so each is escaped
as DOT requires and control characters are dropped.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from emulator.client.client import Client
from emulator.errors import K8semuError

KINDS = ("Node", "Pod", "Service", "Endpoints", "Ingress", "NetworkPolicy")
FORMATS = ("svg", "png", "dot")
GREEN, ORANGE, RED, GREY, BLUE = "#2e7d32", "#ef6c00", "#c62828", "#9e9e9e", "#1565c0"


def quote(text: object) -> str:
    """A DOT string: backslash and double quote escaped, a line break as DOT's ``\\n``, other
    control characters dropped."""
    lines = ["".join(c for c in line if ord(c) >= 32 and ord(c) != 127) for line in str(text).split("\n")]
    return '"' + "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"') for x in lines) + '"'


def element_id(kind: str, namespace: str, name: str = "") -> str:
    """The SVG element id of an object (the page finds pods and nodes by it)."""
    return f"{kind}:{namespace}:{name}" if name else f"{kind}:{namespace}"


@dataclass
class Snapshot:
    """What the picture is drawn from (the API's objects by kind), and the external hosts."""
    objects: dict[str, list[dict]]
    external: list[str] = field(default_factory=list)

    @staticmethod
    def version(client: Client) -> tuple[str, ...]:
        """What changes whenever anything the picture is drawn from does: the resourceVersion of
        each kind's list, asked without the objects (a poller lists them only when it moved)."""
        return tuple(client.collection_version(kind) for kind in KINDS)

    @classmethod
    def take(cls, client: Client) -> "Snapshot":
        status = client.status()
        return cls({kind: client.get(kind) for kind in KINDS}, list(status.get("external_hosts", [])))


def pod_colour(pod: dict) -> str:
    status = pod.get("status", {})
    if pod["metadata"].get("deletionTimestamp"):
        return GREY
    phase = status.get("phase")
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    if phase == "Running":
        return GREEN if ready else ORANGE
    return RED if phase == "Failed" else GREY


def node_ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions", []))


def dot(snap: Snapshot, system: bool = False) -> str:
    """The DOT text (``system``: kube-system's pods too)."""
    o = snap.objects
    pods = [p for p in o.get("Pod", []) if system or p["metadata"]["namespace"] != "kube-system"]
    isolated = _isolated(o.get("NetworkPolicy", []), pods)
    lines = ["digraph cluster {", '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, bgcolor="white"];',
             '  node [fontname="Helvetica", fontsize=10, style="filled,rounded", shape=box, fillcolor="white"];',
             '  edge [color="#607d8b", arrowsize=0.6];']
    for i, node in enumerate(sorted(o.get("Node", []), key=lambda n: n["metadata"]["name"])):
        name = node["metadata"]["name"]
        ip = next((a["address"] for a in node.get("status", {}).get("addresses", []) if a["type"] == "InternalIP"), "")
        colour = GREEN if node_ready(node) else RED
        lines += [f"  subgraph cluster_{i} {{", f"    id={quote(element_id('node', name))};",
                  f"    label={quote(f'{name} {ip}')}; color={quote(colour)}; penwidth=2; style=rounded;",
                  f"    {quote(element_id('node', name) + ':anchor')} [label=\"\", shape=point, style=invis];"]
        for pod in sorted((p for p in pods if p.get("spec", {}).get("nodeName") == name),
                          key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
            lines.append("    " + _pod(pod, pod["metadata"]["namespace"] + "/" + pod["metadata"]["name"] in isolated))
        lines.append("  }")
    known = {n["metadata"]["name"] for n in o.get("Node", [])}
    pending = [p for p in pods if p.get("spec", {}).get("nodeName") not in known]  # unscheduled, or its node gone
    for pod in pending:
        lines.append("  " + _pod(pod, False))
    for host in sorted(snap.external):
        xid = quote(element_id('external', host))
        lines.append(f"  {xid} [id={xid}, label={quote(host)}, shape=box3d, fillcolor=\"#eceff1\"];")
    by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    eps = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in o.get("Endpoints", [])}
    for svc in sorted(o.get("Service", []), key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        if ns == "kube-system" and not system or (ns, name) == ("default", "kubernetes"):
            continue
        spec = svc.get("spec", {})
        ports = ",".join(str(p.get("port")) for p in spec.get("ports", []))
        label = f"svc {ns}/{name}\n{spec.get('type', 'ClusterIP')} {spec.get('clusterIP', '')}:{ports}"
        sid = element_id("service", ns, name)
        lines.append(f"  {quote(sid)} [id={quote(sid)}, label={quote(label)}, shape=ellipse, fillcolor=\"#e3f2fd\", "
                     f"color={quote(BLUE)}];")
        for subset in (eps.get((ns, name)) or {}).get("subsets", []):
            for addr in subset.get("addresses", []):
                ref = addr.get("targetRef") or {}
                if (ref.get("namespace", ns), ref.get("name")) in by_name:
                    lines.append(f"  {quote(sid)} -> {quote(element_id('pod', ref.get('namespace', ns), ref['name']))};")
    for ing in o.get("Ingress", []):
        ns, name = ing["metadata"]["namespace"], ing["metadata"]["name"]
        iid = element_id("ingress", ns, name)
        hosts = ", ".join(r.get("host", "*") for r in ing.get("spec", {}).get("rules", [])) or "*"
        lines.append(f"  {quote(iid)} [id={quote(iid)}, label={quote(f'ingress {ns}/{name}' + chr(10) + hosts)}, shape=hexagon, "
                     f"fillcolor=\"#fff3e0\"];")
        for backend in _backends(ing):
            lines.append(f"  {quote(iid)} -> {quote(element_id('service', ns, backend))};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _pod(pod: dict, isolated: bool) -> str:
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    ip = pod.get("status", {}).get("podIP", "")
    label = f"{ns}/{name}\n{ip}" + ("\n(policy)" if isolated else "")
    colour = pod_colour(pod)
    pid = quote(element_id('pod', ns, name))
    return (f"{pid} [id={pid}, label={quote(label)}, color={quote(colour)}, penwidth=2, "
            f"fillcolor={quote('#fffde7' if isolated else 'white')}];")


def _isolated(policies: list[dict], pods: list[dict]) -> set[str]:
    """Pods some NetworkPolicy selects (matchLabels only: a picture, not the enforcement)."""
    out = set()
    for pol in policies:
        ns = pol["metadata"]["namespace"]
        want = (pol.get("spec", {}).get("podSelector") or {}).get("matchLabels") or {}
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            if pod["metadata"]["namespace"] == ns and all(labels.get(k) == v for k, v in want.items()):
                out.add(f"{ns}/{pod['metadata']['name']}")
    return out


def _backends(ing: dict) -> list[str]:
    spec = ing.get("spec", {})
    names = [((spec.get("defaultBackend") or {}).get("service") or {}).get("name")]
    for rule in spec.get("rules", []):
        for path in (rule.get("http") or {}).get("paths", []):
            names.append(((path.get("backend") or {}).get("service") or {}).get("name"))
    return sorted({n for n in names if n})


def render(text: str, fmt: str) -> bytes:
    """DOT text drawn by Graphviz's ``dot`` (argv, the text on stdin).

    Raises:
        K8semuError: no ``dot`` (Debian's graphviz), or it failed.
    """
    if fmt == "dot":
        return text.encode()
    if fmt not in FORMATS:
        raise K8semuError(f"diagram: -o FILE.svg, .png or .dot, not .{fmt}")
    try:
        done = subprocess.run(["dot", f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=30)
    except FileNotFoundError:
        raise K8semuError("diagram: Graphviz's dot is not installed (Debian's graphviz; make install adds it)") from None
    if done.returncode != 0:
        raise K8semuError(f"diagram: dot failed: {done.stderr.decode(errors='replace')[:300]}")
    return done.stdout
