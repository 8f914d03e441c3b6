"""``k8semu trace --live``: one real connection attempt, marked by its source port, and where it
was seen (Antrea's live Traceflow injects a marked packet; here the mark is a source port no other
connection uses, and the observation points are captures).

- Captures (tcpdump, text, ``--immediate-mode``) on the source's eth0, on the eth0 of every node
  the static trace tunnels through (the VXLAN packets whose inner header carries the port) and on
  the eth0 of every pod the Service could pick; each waits until tcpdump says it listens.
- The attempt: ``nc -z`` (TCP), ``nc -u`` with one datagram (UDP) or one ``ping`` (ICMP), from the
  source's network namespace with that source port.
- The endpoint the switch really picked: the conntrack entry of that source port in the source
  node's zone (``ovs-appctl dpctl/dump-conntrack``), so the static trace can be re-run along it.
All argv lists; addresses come from the cluster's view and ports are numbers.
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from emulator.model.netview import NetworkView
from emulator.runtime.healthcheck import NETNS_DIR

READY_TIMEOUT = 5.0  # tcpdump opening its socket
SEEN_TIMEOUT = 1.5  # from the source's first packet to the last point it reaches (the emulation takes ms)
SEND_TIMEOUT = 6.0  # starting the sender (nsenter, nc) until its first packet: slow on a loaded machine


@dataclass
class Point:
    name: str  # "pod default/web-x", "node worker-1", "source"
    netns: str
    vxlan: bool = False  # a node's eth0: the packet is inside VXLAN
    iface: str = "eth0"  # a node's own packets leave through its gateway
    lines: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    partial: str = ""
    # a pod behind a source NAT (a NodePort's masquerade may pick another source port): capture
    # all of its traffic; ``raw`` keeps it for the caller to pick the connection's lines
    broad: bool = False
    raw: list[str] = field(default_factory=list)


def enter(netns: str) -> list[str]:
    """argv prefix that runs a command in a named network namespace (no mount namespace)."""
    return ["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--"]


def pod_points(view: NetworkView, pod_netns: dict[str, str], ips: list[str], broad: bool = False) -> list["Point"]:
    """A capture point on the eth0 of each running pod among ``ips`` (once each, in order)."""
    pods = {p.ip: p for p in view.pods}
    return [Point(f"pod {pods[ip].namespace}/{pods[ip].name}", pod_netns[ip], broad=broad)
            for ip in dict.fromkeys(ips) if ip in pods and ip in pod_netns]


def refused(line: str, port: int | None) -> bool:
    """A TCP reset, or an ICMP unreachable about the destination port, coming back to the source
    (the lines are the attempt's already: its source port)."""
    return "Flags [R" in line or ("ICMP" in line and "unreachable" in line and f"port {port} unreachable" in line)


def send_argv(netns: str, protocol: str, dst_ip: str, port: int | None, sport: int) -> list[str]:
    enter_ = enter(netns)
    if protocol == "icmp":
        return enter_ + ["ping", "-c", "1", "-W", "1", dst_ip]
    if protocol == "udp":
        return enter_ + ["nc", "-u", "-w", "1", "-p", str(sport), dst_ip, str(port)]
    return enter_ + ["nc", "-z", "-w", "2", "-p", str(sport), dst_ip, str(port)]


def _bpf(point: Point, protocol: str, sport: int, src_ip: str) -> list[str]:
    if point.broad:
        return [protocol]
    if point.vxlan:
        return ["udp", "port", "4789"]
    if protocol == "icmp":
        return ["icmp", "and", "host", src_ip]
    return [protocol, "port", str(sport)] if protocol == "udp" else ["tcp", "port", str(sport), "or", "icmp"]


def observe(points: list[Point], send: list[str], protocol: str, sport: int, src_ip: str,
            done: Callable[[list[Point]], bool], dport: int | None = None) -> int | None:
    """Start every capture, wait until each listens, send, wait until ``done`` says the
    packet got where it goes (or SEEN_TIMEOUT after the source's capture, ``points[0]``, saw it
    leave: counting from the sender's start instead made a busy machine's slow process start
    look like a drop), stop the sender and the captures by PID; their lines are kept in each
    point (for a VXLAN point, the inner lines of this connection only).
    The sender's exit status (None if it was stopped)."""
    sender = None
    try:
        for p in points:
            p.proc = subprocess.Popen(enter(p.netns) + ["tcpdump", "-i", p.iface, "-nn", "-l", "--immediate-mode",
                                                        *_bpf(p, protocol, sport, src_ip)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + READY_TIMEOUT
        for p in points:
            _wait_listening(p, deadline)
        sender = subprocess.Popen(send, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if protocol == "udp":  # nc sends what it reads: one datagram
            sender.stdin.write(b"k8semu trace\n")
        sender.stdin.close()
        deadline, left = time.monotonic() + SEND_TIMEOUT, False
        while time.monotonic() < deadline:
            for p in points:
                _drain(p, 0.02)
            if done(points):
                break
            if not left and any(_ours(line, protocol, sport, src_ip, dport) for line in points[0].lines):
                deadline, left = time.monotonic() + SEEN_TIMEOUT, True
    finally:
        if sender is not None and sender.poll() is None:  # a dropped attempt would wait for its timeout
            sender.kill()
        if sender is not None:
            sender.wait()
        for p in points:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.terminate()  # SIGTERM: SIGINT may be ignored (inherited from a background shell)
        for p in points:
            if p.proc is not None:
                try:
                    rest, _ = p.proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:
                    p.proc.kill()
                    rest, _ = p.proc.communicate()
                text = p.partial + rest.decode(errors="replace")
                p.lines += [line.rstrip() for line in text.splitlines() if line.strip()]
    for p in points:
        p.raw = list(p.lines)
        p.lines = _this_connection(p, protocol, sport, src_ip, dport)
    return sender.returncode if sender is not None else None


def _wait_listening(p: Point, deadline: float) -> None:
    """Until tcpdump says "listening on" (its socket is open: nothing sent after is missed)."""
    assert p.proc is not None and p.proc.stderr is not None
    text = b""
    while time.monotonic() < deadline and b"listening on" not in text:
        ready, _, _ = select.select([p.proc.stderr], [], [], 0.05)
        if ready:
            chunk = os.read(p.proc.stderr.fileno(), 4096)
            if not chunk:
                break
            text += chunk
    if b"listening on" not in text:
        raise RuntimeError(f"tcpdump on {p.name} did not start: {text.decode(errors='replace').strip()[:200]}")


def _drain(p: Point, wait: float) -> None:
    """Whatever tcpdump printed so far (raw reads: a buffered reader would hide lines from select)."""
    assert p.proc is not None and p.proc.stdout is not None
    ready, _, _ = select.select([p.proc.stdout], [], [], wait)
    if ready:
        chunk = os.read(p.proc.stdout.fileno(), 65536)
        p.partial += chunk.decode(errors="replace")
        *lines, p.partial = p.partial.split("\n")
        p.lines += [line.rstrip() for line in lines if line.strip()]


def connection_lines(lines: list[str], protocol: str, sport: int, src_ip: str, dport: int | None) -> list[str]:
    """The lines of ``lines`` about the connection from ``sport``."""
    return [line for line in lines if _ours(line, protocol, sport, src_ip, dport)]


def _this_connection(p: Point, protocol: str, sport: int, src_ip: str, dport: int | None) -> list[str]:
    """The lines about this attempt only: the capture filter lets ICMP through (a reject comes
    back as ICMP), and another connection's ICMP must not count as this one reaching a pod."""
    if not p.vxlan:
        return [line for line in p.lines if _ours(line, protocol, sport, src_ip, dport)]
    # tcpdump prints a VXLAN packet as the outer line, then the inner one on the next line
    keep, outer = [], ""
    for line in p.lines:
        if "VXLAN" in line:
            outer = line
            continue
        inner = line.strip()
        if _ours(inner, protocol, sport, src_ip, dport):
            keep.append(f"{outer.split(': VXLAN')[0]} VXLAN | {inner}")
    return keep


def _ours(line: str, protocol: str, sport: int, src_ip: str, dport: int | None) -> bool:
    """A tcpdump line of this attempt: its source port on either side (or quoted in an ICMP
    error about it), or for a ping, an echo from or to the source."""
    if protocol == "icmp":
        return "ICMP echo" in line and src_ip in line
    return bool(re.search(rf"\.{sport}[ :>]", line)) or (
        "ICMP" in line and f"> {src_ip}:" in line and f"port {dport} unreachable" in line)


def real_endpoint(zone: int, protocol: str, src_ip: str, sport: int) -> str:
    """ip:port of the connection's reply source in the source node's conntrack zone ("" if none)."""
    if protocol == "icmp":
        return ""
    out = subprocess.run(["ovs-appctl", "dpctl/dump-conntrack", f"zone={zone}"], capture_output=True, text=True,
                         timeout=10).stdout
    for line in out.splitlines():
        if line.startswith(protocol) and f"src={src_ip}," in line and f"sport={sport}," in line:
            m = re.search(r"reply=\(src=([0-9.]+),dst=[0-9.]+,sport=(\d+)", line)
            if m:
                return f"{m.group(1)}:{m.group(2)}"
    return ""
