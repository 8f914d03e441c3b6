"""``k8semu capture``: tcpdump in the network namespace of a pod, a node or an external host,
on its eth0 (a node's eth0 carries the VXLAN overlay: outer node addresses, inner pod packets).

Why tcpdump rather than a capture library: it is the tool the course teaches, it decodes VXLAN
(UDP 4789) itself, and its pcap files open in Wireshark. It runs as an argv list entered into
the namespace with ``nsenter --net`` (no mount namespace: the file is written on this machine),
as root (``-Z root``: the file goes where the user asked, which tcpdump's own user may not write).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import TextIO

from emulator.client.client import Client
from emulator.errors import K8semuError, NotFoundError
from emulator.runtime.healthcheck import NETNS_DIR


def netns_of(client: Client, target: str, namespace: str | None) -> tuple[str, str]:
    """(namespace name under /run/netns, what it is) for POD, pod/NAME, node/NAME, external/NAME."""
    kind, sep, name = target.partition("/")
    if not sep:
        kind, name = "", target
    status = client.status()
    hosts = status.get("netns", {})
    if kind in ("node", "nodes") or (kind == "" and name in status.get("nodes", [])):
        if name not in status.get("nodes", []):
            raise NotFoundError(f'nodes "{name}" not found')
        return hosts[name], f"node {name} eth0"
    if kind == "external" or (kind == "" and name in status.get("external_hosts", [])):
        if name not in status.get("external_hosts", []):
            raise NotFoundError(f'external host "{name}" not found')
        return hosts[name], f"external host {name} eth0"
    if kind not in ("", "pod", "pods"):
        raise K8semuError(f"{target}: capture a pod (NAME or pod/NAME), node/NAME or external/NAME")
    pod = client.pod(name, namespace)
    if not pod.get("netns"):
        raise K8semuError(f"pod {name} has no network namespace of its own (hostNetwork: capture node/NODE)")
    return pod["netns"], f"pod {pod['namespace']}/{pod['name']} eth0"


def _stop(signum: int, frame) -> None:
    """Ctrl-C or SIGTERM while capturing: stop tcpdump by its PID, then end."""
    raise KeyboardInterrupt


def argv(netns: str, write: str | None, count: int | None, bpf: list[str]) -> list[str]:
    """tcpdump entered into ``netns``: line-buffered text, or a pcap file."""
    cmd = ["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--", "tcpdump", "-i", "eth0", "-nn", "-Z", "root",
           "--immediate-mode"]
    cmd += ["-U", "-w", write] if write else ["-l"]
    if count:
        cmd += ["-c", str(count)]
    return cmd + bpf


def run(client: Client, target: str, namespace: str | None, write: str | None, count: int | None,
        duration: float | None, bpf: list[str], out: TextIO, err: TextIO) -> int:
    """Capture until ``count`` packets, ``duration`` seconds, Ctrl-C or SIGTERM, whichever comes
    first."""
    if count is not None and count < 1:
        raise K8semuError("--count: at least 1")
    if write:
        Path(write).resolve().parent.mkdir(parents=True, exist_ok=True)
    netns, what = netns_of(client, target, namespace)
    cmd = argv(netns, write, count, bpf)
    err.write(f"capturing on {what}{' to ' + write if write else ''}: {shlex.join(cmd[3:])}\n")
    err.flush()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if not write else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        text, problems = proc.communicate(timeout=duration)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        # SIGTERM, not SIGINT: a capture started from a background shell inherits SIGINT ignored;
        # tcpdump flushes its file and prints its counts on either
        proc.terminate()
        text, problems = proc.communicate(timeout=30)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if text:
        out.write(text)
    lines = [line for line in (problems or "").splitlines() if "listening on" not in line]
    err.write("".join(line + "\n" for line in lines))
    return 0 if proc.returncode in (0, -signal.SIGINT, -signal.SIGTERM, 130, 143) else 1
