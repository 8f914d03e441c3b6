"""The trace on the kernel data planes (``cni: flannel``, ``cni: calico``): what netfilter did to
one real packet, read from ``nft monitor`` (nftables' own tracer; kube-proxy's iptables mode is
iptables-nft here, so its chains are traced the same way as its nftables mode).

A table of k8semu's own (``inet k8semu_trace_<port>``, in each node's namespace, for the trace's
duration) marks the packets of the traced connection (its unique source port) with
``meta nftrace set 1`` before anything else sees them; ``nft monitor`` in each node prints every
rule they meet. This module builds that table and reads the monitor's lines into hops; the
runtime (``runtime/tracekernel.py``) runs them.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from emulator.trace.path import Hop

PRIORITY = -350  # before conntrack (-200), raw (-300) and every kube-proxy chain


def table_name(sport: int) -> str:
    return f"k8semu_trace_{int(sport)}"


def ruleset(sport: int, protocol: str, src_ip: str) -> str:
    """``nft -f`` input: mark the traced connection's packets, both directions (numbers and an
    address only, each checked).

    Raises:
        ValueError: a port, protocol or address that is not one.
    """
    port = int(sport)
    if not 0 < port < 65536 or protocol not in ("tcp", "udp", "icmp"):
        raise ValueError(f"trace: bad port {sport} or protocol {protocol}")
    src = str(ipaddress.IPv4Address(src_ip))
    if protocol == "icmp":
        mark = [f"ip saddr {src} icmp type echo-request meta nftrace set 1",
                f"ip daddr {src} icmp type echo-reply meta nftrace set 1"]
    else:
        mark = [f"{protocol} sport {port} meta nftrace set 1", f"{protocol} dport {port} meta nftrace set 1"]
    body = "; ".join(mark)
    return (f"table inet {table_name(port)} {{\n"
            f"  chain pre {{ type filter hook prerouting priority {PRIORITY}; {body}; }}\n"
            f"  chain out {{ type filter hook output priority {PRIORITY}; {body}; }}\n"
            f"}}\n")


LINE = re.compile(r"^trace id (\w+) (\w+) (\S+) (\S+) (packet|rule|policy|verdict)(?::)?\s*(.*)$")


@dataclass
class Event:
    node: str
    trace: str  # the kernel's id of one packet's walk
    family: str
    table: str
    chain: str
    what: str  # packet | rule | policy | verdict
    text: str


@dataclass
class Walk:
    """One packet's walk through one node's netfilter."""
    node: str
    trace: str
    packet: str = ""
    events: list[Event] = field(default_factory=list)


def parse(node: str, text: str, table: str) -> list[Walk]:
    """The walks in one node's ``nft monitor`` output, in order, k8semu's own marking table left
    out. A walk is one packet through one hook: it starts at a ``packet:`` line, and the lines of
    the same trace id follow it (ids are the kernel's per packet and hook, and come back later
    for other packets: an id alone does not name a packet)."""
    walks: list[Walk] = []
    open_walks: dict[str, Walk] = {}
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        ev = Event(node, m.group(1), m.group(2), m.group(3), m.group(4), m.group(5), m.group(6).strip())
        if ev.table == table:
            continue
        if ev.what == "packet" or ev.trace not in open_walks:
            open_walks[ev.trace] = Walk(node, ev.trace, ev.text if ev.what == "packet" else "")
            walks.append(open_walks[ev.trace])
        open_walks[ev.trace].events.append(ev)
    return walks


def first_packet(walks: list[Walk], protocol: str, sport: int) -> list[Walk]:
    """The walks of the connection's first packet from the client (SYN, the first datagram, the
    echo request) through each hook of each node."""
    def forward(w: Walk) -> bool:
        first = w.packet
        if protocol == "icmp":
            return "echo-request" in first or "icmp type 8" in first
        if f"sport {sport}" not in first:
            return False
        return protocol != "tcp" or "flags == syn" in first
    return [w for w in walks if forward(w)]


def hops(walks: list[Walk]) -> list[Hop]:
    """A hop per hook entered and per rule that did something (a jump, a NAT, a verdict)."""
    out = []
    for w in walks:
        for ev in w.events:
            where = f"{ev.family} {ev.table} {ev.chain}"
            if ev.what == "packet":
                out.append(Hop("hook", w.node, f"{where}: {_summary(ev.text)}", where))
            elif ev.what == "rule":
                rule, verdict = _verdict(ev.text)
                out.append(Hop("rule", w.node, f"{where}: {_clean(rule)} ({verdict})", where, _clean(rule), [verdict]))
            elif ev.what == "policy":
                out.append(Hop("rule", w.node, f"{where}: policy {ev.text}", where, "", [f"policy {ev.text}"]))
    return out


def verdict(hop_list: list[Hop]) -> tuple[str, Hop | None]:
    """("dropped" | "rejected" | "", the rule that decided) from the rules' verdicts."""
    for hop in hop_list:
        if hop.kind != "rule" or not hop.actions:
            continue
        v = hop.actions[0]
        if " reject" in f" {hop.match}":  # nftables' trace names a reject's verdict "drop"
            return "rejected", hop
        if v.startswith("verdict drop") or v == "policy drop":
            return "dropped", hop
    return "", None


def dnat(hop_list: list[Hop]) -> str:
    """ip:port of the DNAT a rule made (kube-proxy's KUBE-SEP / its nftables endpoint chain)."""
    for hop in hop_list:
        m = re.search(r"dnat (?:ip )?to ([0-9.]+(?::\d+)?)", hop.match)
        if m:
            return m.group(1)
    return ""


def _verdict(text: str) -> tuple[str, str]:
    m = re.search(r"\(verdict ([^)]*)\)\s*$", text)
    return (text[:m.start()].strip(), f"verdict {m.group(1)}") if m else (text, "")


def _clean(rule: str) -> str:
    """Without the counters (they change on every packet)."""
    return re.sub(r"\s+", " ", re.sub(r"counter packets \d+ bytes \d+", "", rule)).strip()


def _summary(packet: str) -> str:
    keep = []
    for key in ("iif", "oif", "ip saddr", "ip daddr", "tcp sport", "tcp dport", "udp sport", "udp dport",
                "tcp flags"):
        m = re.search(rf"{key} (\S+(?: \S+)?)" if key == "tcp flags" else rf"{key} (\S+)", packet)
        if m:
            keep.append(f"{key} {m.group(1)}")
    return ", ".join(keep)
