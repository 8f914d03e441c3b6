"""The kubectl-like verbs: get, apply, delete, scale, exec, logs, flows."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TextIO

from emulator.cli import output
from emulator.errors import K8semuError, NotFoundError
from emulator.model import naming
from emulator.model.labelquery import parse_label_query
from emulator.client import Client
from emulator.client.targets import exec_target, resolve_kind
from emulator.spec.manifests import load_manifest_documents, load_manifest_files


def manifest_paths(target: str) -> list[str]:
    if target == "-":
        return ["/dev/stdin"]
    path = Path(target)
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    return [target]


def kind_and_names(kind_word: str, names: list[str]) -> tuple[str, list[str]]:
    """kubectl's two spellings: ``get svc web db`` and ``get svc/web svc/db`` (one kind).

    Raises:
        K8semuError: KIND/NAME words of different kinds, or mixed with a bare KIND.
    """
    words = [kind_word, *names]
    if "/" not in kind_word:
        if any("/" in n for n in names):
            raise K8semuError("there is no need to specify a resource type as a separate argument "
                              "when passing arguments in resource/name form")
        return kind_word, names
    kinds = {w.split("/", 1)[0] for w in words}
    if any("/" not in w for w in words) or len(kinds) != 1:
        raise K8semuError("arguments in resource/name form must have a single resource and name "
                          "(and one kind)")
    return kinds.pop(), [w.split("/", 1)[1] for w in words]


def pod_name(word: str) -> str:
    """``POD`` or ``pod/POD`` (``po/POD``, ``pods/POD``) as kubectl exec and logs take it."""
    kind, _, name = word.partition("/")
    if not name:
        return word
    if kind not in ("pod", "pods", "po"):
        raise K8semuError(f"{kind}/{name}: exec and logs take a pod (pod/NAME)")
    return name


def get(client: Client, kind_word: str, names: list[str], namespace: str | None, all_ns: bool,
        selector: str | None, out_format: str | None, out: TextIO) -> int:
    kind = resolve_kind(kind_word)
    if "/" in kind_word:
        raise K8semuError(f"unknown resource {kind_word!r}")
    ns = None if all_ns or kind in ("Node", "Namespace") else (namespace or "default")
    items = client.get(kind, ns)
    if selector:
        try:
            sel = parse_label_query(selector)
        except ValueError as exc:
            raise K8semuError(str(exc)) from None
        items = [o for o in items if sel.matches(o["metadata"].get("labels", {}))]
    if names:
        found = [o for o in items if o["metadata"]["name"] in names]
        missing = [n for n in names if n not in {o["metadata"]["name"] for o in found}]
        if missing:
            raise NotFoundError(f'{kind.lower()}s "{missing[0]}" not found')
        items = found
    if not items and out_format not in ("json", "yaml"):
        where = "" if ns is None else f" in {ns} namespace"
        out.write(f"No resources found{where}.\n")
        return 0
    out.write(output.render(kind, items, out_format, all_ns, single=len(names) == 1) + "\n")
    return 0


def apply(client: Client, files: list[str], namespace: str | None, out: TextIO) -> int:
    docs = load_manifest_documents([p for f in files for p in manifest_paths(f)])
    done = client.apply(docs, namespace or "default")  # parsed and checked there, located in the files
    for warning in done.warnings:
        out.write(f"Warning: {warning}\n")
    for line in done.lines:
        out.write(line + "\n")
    return 0


def delete(client: Client, files: list[str], kind_word: str | None, names: list[str], namespace: str | None,
           out: TextIO, wait: float = 0, grace: int = -1, force: bool = False, cascade: str = "background",
           err: TextIO | None = None) -> int:
    """Delete the objects; with ``wait`` (seconds), return once they are gone, as ``kubectl
    delete`` does by default (a pod is gone when its containers have stopped). ``grace``,
    ``force`` and ``cascade`` as kubectl takes them: --force means a grace period of 0 unless
    one is given, and 0 without --force means 1 second.

    Raises:
        K8semuError: nothing to delete, or still there after ``wait`` seconds.
    """
    targets: list[tuple[str, str, str]] = []
    if files:
        mset = load_manifest_files([p for f in files for p in manifest_paths(f)], namespace or "default")
        from emulator.cluster.controllers import kind_of
        targets = [(kind_of(o), o.meta.namespace, o.meta.name) for o in reversed(mset.objects)]
    elif kind_word:
        if "/" in kind_word:
            kind_word, name = kind_word.split("/", 1)
            names = [name] + names
        kind = resolve_kind(kind_word)
        targets = [(kind, namespace or "default", n) for n in names]
    if not targets:
        raise K8semuError("you must provide one or more resources by -f FILE or KIND NAME")
    if force and grace < 0:
        grace = 0
    elif grace == 0 and not force:
        grace = 1
    if force and grace == 0 and err is not None:
        err.write("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
                  "terminated. The resource may continue to run on the cluster indefinitely.\n")
    for kind, ns, name in targets:
        line = client.delete(kind, ns, name, grace if grace >= 0 else None, cascade.capitalize())
        out.write((line.replace(" deleted", " force deleted") if force and grace == 0 else line) + "\n")
        out.flush()
    if wait:
        deadline = time.monotonic() + wait
        for kind, ns, name in targets:
            client.wait_gone(kind, None if kind == "Namespace" else ns, name, deadline)
    return 0


def scale(client: Client, target: list[str], replicas: int, namespace: str | None, out: TextIO) -> int:
    if len(target) == 2 and "/" not in target[0]:
        kind_word, name = target
    elif len(target) == 1 and "/" in target[0]:
        kind_word, name = target[0].split("/", 1)
    else:
        raise K8semuError("scale takes KIND/NAME or KIND NAME, e.g. deployment/web")
    kind = resolve_kind(kind_word)
    out.write(client.scale(kind, namespace or "default", name, replicas) + "\n")
    return 0


def exec_(client: Client, target: str, namespace: str | None, container: str | None, command: list[str]) -> int:
    """Run a command and pass its exit status and output straight through."""
    try:
        return exec_target(client, target, namespace, container, command).call()
    except FileNotFoundError:
        return 127


def logs(client: Client, target: str, namespace: str | None, container: str | None, out: TextIO,
         previous: bool = False) -> int:
    pod = client.pod(target, namespace)
    name = container or pod["containers"][0]  # kubectl's default: the first container
    path = Path(pod["dir"]) / naming.container_log(name, previous)
    if previous and not path.exists():
        raise NotFoundError(f'previous terminated container "{name}" in pod "{pod["name"]}" not found')
    out.write(path.read_text(errors="replace") if path.exists() else "")
    return 0


def flows(client: Client, node: str, out: TextIO) -> int:
    """``ovs-ofctl dump-flows`` with table names and each cookie's owner spelled out."""
    from emulator.pipeline.build import describe_cookie
    from emulator.pipeline.tables import TABLE_NAMES
    from emulator.model.netview import NetworkView
    import re
    status = client.status()
    view = NetworkView.from_json((client.run / "view.json").read_text())
    if status.get("cni", "openflow") != "openflow":
        raise K8semuError(f"cluster {status['cluster']} runs cni: {status['cni']}: it has no OpenFlow tables; its "
                          f"Services are kube-proxy's rules: k8semu exec {node} -- iptables-save -t nat")
    if node not in status["bridges"]:
        raise NotFoundError(f'nodes "{node}" not found')
    dump = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows",
                           status["bridges"][node]], capture_output=True, text=True, check=True).stdout
    lines = []
    for line in dump.splitlines():
        m = re.search(r"cookie=(0x[0-9a-f]+)", line)
        if not m:
            continue
        t = re.search(r" table=(\d+),", line)
        table = int(t.group(1)) if t else 0  # ovs-ofctl omits table=0
        line = line.replace(t.group(0), "") if t else line
        line = line.replace(m.group(0) + ",", f"{m.group(0)}, table={TABLE_NAMES.get(table, table)},", 1)
        line = re.sub(r"goto_table:(\d+)", lambda g: f"goto_table:{TABLE_NAMES.get(int(g.group(1)), g.group(1))}", line)
        lines.append((table, f"{line.strip()}  # {describe_cookie(view, int(m.group(1), 16))}"))
    out.write("\n".join(l for _, l in sorted(lines, key=lambda x: x[0])) + "\n")
    return 0


def describe(client: Client, kind_word: str, name: str, namespace: str | None, out: TextIO) -> int:
    from emulator.cli.describe import (describe_ingress, describe_pod, describe_policy, describe_service,
                                       events_section)
    kind = resolve_kind(kind_word)
    ns = namespace or "default"
    if kind == "Pod":
        pod = next((o for o in client.get(kind, ns) if o["metadata"]["name"] == name), None)
        if pod is None:
            raise NotFoundError(f'pods "{name}" not found')
        try:
            network = client.pod(name, ns).get("cni")
        except NotFoundError:  # no sandbox (pending, or ran to completion)
            network = None
        out.write(describe_pod(pod, about(client, "Pod", ns, name), network) + "\n")
        return 0
    if kind == "NetworkPolicy":
        pol = next((o for o in client.get(kind, ns) if o["metadata"]["name"] == name), None)
        if pol is None:
            raise NotFoundError(f'networkpolicies.networking.k8s.io "{name}" not found')
        out.write(describe_policy(pol) + "\n" + "\n".join(events_section(about(client, kind, ns, name))) + "\n")
        return 0
    if kind == "Ingress":
        ing = next((o for o in client.get(kind, ns) if o["metadata"]["name"] == name), None)
        if ing is None:
            raise NotFoundError(f'ingresses.networking.k8s.io "{name}" not found')
        eps = {o["metadata"]["name"]: o for o in client.get("Endpoints", ns)}
        out.write(describe_ingress(ing, eps, ingress_problems(client.run, ns, name)) + "\n")
        return 0
    if kind != "Service":
        raise K8semuError(f"describe supports pods, services, ingresses and networkpolicies, not {kind_word!r}")
    svc = next((o for o in client.get("Service", ns) if o["metadata"]["name"] == name), None)
    if svc is None:
        raise NotFoundError(f'services "{name}" not found')
    eps = next((o for o in client.get("Endpoints", ns) if o["metadata"]["name"] == name), None)
    out.write(describe_service(svc, eps) + "\n")
    return 0


def about(client: Client, kind: str, namespace: str, name: str) -> list[dict]:
    """The Events about one object (core/v1 Events, as ``describe`` shows them)."""
    return [e for e in client.events(namespace)
            if (e["involvedObject"]["kind"], e["involvedObject"]["name"]) == (kind, name)]


def dns_lookup(client: Client, name: str, rtype: str, source: str | None, namespace: str | None, out: TextIO) -> int:
    """``k8semu dns NAME [TYPE] [--from POD]``: dig inside the pod, with its resolv.conf and
    search list, printing the status line and the answer section as the pod sees them."""
    if source is None:
        pods = [p for p in client.get("Pod", namespace or "default")
                if p["status"].get("phase") == "Running"]
        if not pods:
            raise NotFoundError("no running pod to ask from; name one with --from POD")
        source, namespace = pods[0]["metadata"]["name"], pods[0]["metadata"]["namespace"]
    where = exec_target(client, source, namespace, None,
                        ["dig", "+search", "+noall", "+comments", "+answer", "+authority", name, rtype.upper()])
    done = where.run(capture_output=True, text=True)
    status = next((line.split("status: ")[1].split(",")[0] for line in done.stdout.splitlines()
                   if "status: " in line), "no answer")
    out.write(f"from pod {namespace or 'default'}/{source}: {name} {rtype.upper()} -> {status}\n")
    section = ""
    for line in done.stdout.splitlines():
        if line.startswith(";; ANSWER SECTION") or line.startswith(";; AUTHORITY SECTION"):
            section = line
            out.write(line + "\n")
        elif section and line.strip() and not line.startswith(";"):
            out.write(line + "\n")
    return 0 if status == "NOERROR" else 1


def ingress_problems(run: Path, namespace: str, name: str) -> list[str]:
    """What the controller reports for this Ingress: the same pure rendering, on the same snapshot."""
    import json
    from emulator.ingress.render import render
    try:
        snapshot = json.loads((run / "shared" / "ingress" / "cluster.json").read_text())
    except (OSError, ValueError):
        return []
    return [p for p in render(snapshot).problems if p.startswith(f"Ingress {namespace}/{name}:")]
