"""``k8semu probe``: the reachability truth table, as the Kubernetes e2e netpol tests and
cyclonus print it: rows are sources, columns destinations, ``.`` allowed, ``X`` blocked.

Every source pod runs one prober process (``emulator.images.prober``) that tries all targets at
once with a bounded timeout, and all sources run together, so a 9 x 9 table on four
port/protocol pairs takes about one timeout.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from emulator.errors import K8semuError
from emulator.client.client import Client


def pods_of(client: Client, namespaces: list[str] | None) -> list[tuple[str, str, str]]:
    """(namespace/name, ip, pause pid) of running pods in the namespaces (default: all but kube-*)."""
    out = []
    for p in client.get("Pod"):
        ns = p["metadata"]["namespace"]
        if (namespaces and ns not in namespaces) or (not namespaces and ns.startswith("kube-")):
            continue
        if p["status"].get("phase") == "Running" and p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp"):
            out.append((f"{ns}/{p['metadata']['name']}", p["status"]["podIP"], ns))
    return sorted(out)


def probe(client: Client, namespaces: list[str] | None, ports: list[int], protocols: list[str],
          timeout: float = 1.0) -> dict:
    """{"tcp/80": {source: {destination: allowed}}} for every pair of pods."""
    pods = pods_of(client, namespaces)
    targets = [(ip, port, proto) for proto in protocols for port in ports for _, ip, _ in pods]
    procs = {}
    for name, _, ns in pods:
        info = client.pod(name.split("/", 1)[1], ns)
        argv = ["ip", "netns", "exec", info["netns"], sys.executable, "-m",
                "emulator.images.prober", json.dumps(targets), str(timeout)]
        procs[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tables: dict[str, dict[str, dict[str, bool]]] = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=timeout * 4 + 30)
        if proc.returncode != 0:
            raise K8semuError(f"probe from {name} failed: {err.strip()}")
        results = json.loads(out)
        i = 0
        for proto in protocols:
            for port in ports:
                row = tables.setdefault(f"{proto}/{port}", {}).setdefault(name, {})
                for dest, _, _ in pods:
                    row[dest] = results[i]
                    i += 1
    return tables


def render(tables: dict) -> str:
    out = []
    for key, rows in tables.items():
        names = list(rows)
        width = max(len(n) for n in names)
        out.append(key)
        out.append(" " * (width + 1) + " ".join(n.ljust(width) for n in names).rstrip())
        for src in names:
            out.append(src.ljust(width + 1) + " ".join(("." if rows[src][d] else "X").ljust(width) for d in names).rstrip())
        out.append("")
    return "\n".join(out)


def parse_tables(text: str) -> dict:
    """The inverse of ``render`` (for ``--expect``): blank lines separate tables."""
    tables: dict = {}
    for block in filter(None, (b.strip("\n") for b in text.split("\n\n"))):
        lines = block.splitlines()
        key, names = lines[0].strip(), lines[1].split()
        tables[key] = {}
        for line in lines[2:]:
            cells = line.split()
            tables[key][cells[0]] = {d: c == "." for d, c in zip(names, cells[1:])}
    return tables


def diff(expected: dict, actual: dict) -> list[str]:
    out = []
    for key, rows in expected.items():
        for src, cols in rows.items():
            for dst, want in cols.items():
                got = actual.get(key, {}).get(src, {}).get(dst)
                if got != want:
                    out.append(f"{key} {src} -> {dst}: expected {'.' if want else 'X'}, got "
                               f"{'?' if got is None else ('.' if got else 'X')}")
    return out


PROTOCOLS = ("tcp", "udp", "sctp")


def sctp_missing() -> str | None:
    """Why this kernel cannot open an SCTP socket, or None if it can."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        return None
    except OSError as exc:
        return exc.strerror or str(exc)


def check_protocols(protocols: list[str]) -> None:
    """Refuse what cannot be probed rather than probe something else in its place.

    Raises:
        K8semuError: an unknown protocol, or SCTP on a kernel without it.
    """
    for proto in protocols:
        if proto not in PROTOCOLS:
            raise K8semuError(f"--protocol {proto!r}: expected one of {', '.join(PROTOCOLS)}")
    if "sctp" in protocols and (why := sctp_missing()):
        raise K8semuError(f"this kernel has no SCTP (socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): {why}); "
                          "SCTP cannot be probed here")


def run(client: Client, namespaces: list[str] | None, ports: str, protocols: str, expect: str | None,
        out: TextIO) -> int:
    wanted = [p.lower() for p in protocols.split(",")]
    check_protocols(wanted)
    tables = probe(client, namespaces, [int(p) for p in ports.split(",")], wanted)
    out.write(render(tables))
    if expect:
        differences = diff(parse_tables(Path(expect).read_text()), tables)
        out.write(("\n".join(differences) + "\n") if differences else "matches the expected table\n")
        return 1 if differences else 0
    return 0
