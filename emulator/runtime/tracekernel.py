"""``k8semu trace`` on ``cni: flannel`` and ``cni: calico``: always live. netfilter's path of a
packet depends on conntrack and on kube-proxy's random endpoint choice at the moment it passes,
so the trace is one real attempt, watched by nftables' own tracer in every node
(``trace.nfttrace``) and by captures at the source and the candidate pods (``tracelive``); then
each node's route for the destination (``ip route get``) and, through a VXLAN device, its FDB
entry. Every table k8semu adds is its own (``inet k8semu_trace_<port>``), deleted when done;
monitors and captures are stopped by PID.
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import time

from emulator.model.netview import NetworkView
from emulator.runtime import tracelive
from emulator.trace import nfttrace
from emulator.trace.path import Hop

READY_TIMEOUT = 5.0
QUIET = 0.1  # the monitors have printed all they will once nothing came for this long
VXLAN_DEVICES = ("flannel.1", "vxlan.calico")


class Monitors:
    """``nft monitor`` in each node, subscribed before the marking table exists (its own "add
    table" line says it listens), the table added, and both taken away at the end."""

    def __init__(self, netns: dict[str, str], sport: int, protocol: str, src_ip: str) -> None:
        self.netns, self.table = netns, nfttrace.table_name(sport)
        self.text = {n: "" for n in netns}
        self.procs = {n: subprocess.Popen(tracelive.enter(ns) + ["nft", "monitor"], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL) for n, ns in netns.items()}
        rules = nfttrace.ruleset(sport, protocol, src_ip)
        for n, ns in netns.items():
            subprocess.run(tracelive.enter(ns) + ["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True,
                           timeout=10)
        # a monitor started a moment ago may not have subscribed yet: touch the table (an empty
        # chain of its own) until each monitor has printed something of it
        deadline, touch = time.monotonic() + READY_TIMEOUT, 0
        while time.monotonic() < deadline:
            waiting = [n for n, t in self.text.items() if f"inet {self.table}" not in t]
            if not waiting:
                break
            touch += 1
            for n in waiting:
                subprocess.run(tracelive.enter(netns[n]) + ["nft", "add", "chain", "inet", self.table, f"ready{touch}"],
                               capture_output=True, timeout=10)
            self._read(0.05)

    def _read(self, wait: float) -> bool:
        fds = {p.stdout.fileno(): n for n, p in self.procs.items() if p.stdout is not None}
        ready, _, _ = select.select(list(fds), [], [], wait)
        for fd in ready:
            chunk = os.read(fd, 65536)
            self.text[fds[fd]] += chunk.decode(errors="replace")
        return bool(ready)

    def finish(self) -> dict[str, str]:
        """Read until quiet, then delete the tables and stop the monitors: each node's output."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self._read(QUIET):
            pass
        self.close()
        return self.text

    def close(self) -> None:
        for n, ns in self.netns.items():
            subprocess.run(tracelive.enter(ns) + ["nft", "delete", "table", "inet", self.table], capture_output=True,
                           timeout=10)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def trace(view: NetworkView, node_netns: dict[str, str], pod_netns: dict[str, str], source: str,
          source_netns: str, source_node: str, src_ip: str, wire: tuple[str, int | None], protocol: str,
          sport: int, candidates: list[str], prelude: list[Hop]) -> dict:
    """One attempt from ``source_netns`` to ``wire`` (address, port), traced in every node.
    ``candidates``: the pod addresses it may end at (a Service's endpoints, or the pod)."""
    dst_ip, port = wire
    points = [tracelive.Point(f"source {source}", source_netns)]
    dest = tracelive.pod_points(view, pod_netns, candidates, broad=True)
    monitors = Monitors(node_netns, sport, protocol, src_ip)
    try:
        tracelive.observe(points + dest, tracelive.send_argv(source_netns, protocol, dst_ip, port, sport),
                          protocol, sport, src_ip, lambda _: any(p.lines for p in dest), port)
        text = monitors.finish()
    except BaseException:
        monitors.close()
        raise
    # a masquerade (a NodePort from outside) may give the connection another source port: the
    # node's conntrack entry says which, and the pods' lines are read with it
    ports = {sport} | masqueraded(node_netns, protocol, src_ip, sport)
    for p in dest:
        p.lines = [line for port_ in sorted(ports) for line in
                   tracelive.connection_lines(p.raw, protocol, port_, "", port)] if protocol != "icmp" else p.lines
    walks = [w for node in sorted(text, key=lambda n: n != source_node)
             for w in nfttrace.parse(node, text[node], monitors.table)]
    rules = nfttrace.hops(nfttrace.first_packet(walks, protocol, sport))
    hops = prelude + [Hop("host", source_node, f"{source} ({src_ip}) sends to {dst_ip}"
                          f"{':' + str(port) if port else ''}/{protocol} from source port {sport} (one real attempt)")]
    hops += rules
    endpoint = nfttrace.dnat(rules)
    target = endpoint.split(":")[0] if endpoint else dst_ip
    for node in dict.fromkeys(h.node for h in rules):
        hops += route(node, node_netns[node], target)
    reached = [p.name for p in dest if p.lines]
    refused = any(tracelive.refused(line, port) for line in points[0].lines)
    decided, rule = nfttrace.verdict(rules)
    if decided:
        result, where = decided, f"{rule.node}: {rule.table}"
    elif reached:
        result, where = "delivered", reached[0]
    elif refused:
        result, where = "rejected", "a reset or ICMP unreachable came back"
    else:
        result, where = "unknown", "seen at no candidate pod, no rule dropped it"
    agrees = (result == "delivered" and len(reached) == 1) or (result in ("dropped", "rejected") and not reached)
    seen = [{"at": p.name, "packets": p.lines} for p in points + dest]
    return {"verdict": result, "where": where, "endpoint": endpoint, "hops": [h.to_json() for h in hops],
            "live": {"sport": sport, "endpoint": endpoint, "reached": reached, "refused": refused, "agrees": agrees,
                     "seen": seen}}


CONNTRACK = re.compile(r"src=(\S+) dst=\S+ sport=(\d+) dport=\d+ .*?src=\S+ dst=(\S+) sport=\d+ dport=(\d+)")


def masqueraded(node_netns: dict[str, str], protocol: str, src_ip: str, sport: int) -> set[int]:
    """The source ports the nodes' conntrack gave the connection from ``src_ip:sport`` (its
    reply's destination port), where a NAT changed it, followed through every NAT it met: a pod
    calling another node's NodePort is masqueraded by its own node, then by kube-proxy there."""
    if protocol == "icmp":
        return set()
    tables = [subprocess.run(tracelive.enter(netns) + ["conntrack", "-L", "-p", protocol], capture_output=True,
                             text=True, timeout=10).stdout for netns in node_netns.values()]
    entries = [m.groups() for text in tables for m in map(CONNTRACK.search, text.splitlines()) if m]
    seen, todo = {(src_ip, sport)}, [(src_ip, sport)]
    while todo:
        ip, port = todo.pop()
        for orig_ip, orig_port, reply_ip, reply_port in entries:
            key = (reply_ip, int(reply_port))
            if (orig_ip, int(orig_port)) == (ip, port) and key not in seen:
                seen.add(key)
                todo.append(key)
    return {port for _, port in seen if port != sport}


def route(node: str, netns: str, target: str) -> list[Hop]:
    """The node's route for ``target``, and through a VXLAN device the FDB entry it uses."""
    words = subprocess.run(["ip", "-n", netns, "-o", "route", "get", target], capture_output=True, text=True,
                           timeout=10).stdout.split()
    got = {k: words[words.index(k) + 1] for k in ("via", "dev", "src") if k in words[:-1]}
    out = [Hop("route", node, f"ip route get {target} -> " + " ".join(f"{k} {v}" for k, v in got.items()))]
    dev, via = got.get("dev", ""), got.get("via", "")
    if dev in VXLAN_DEVICES and via:
        neigh = subprocess.run(["ip", "-n", netns, "neigh", "show", via, "dev", dev], capture_output=True, text=True,
                               timeout=10).stdout.split()
        mac = neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh[:-1] else ""
        fdb = subprocess.run(["bridge", "-n", netns, "fdb", "show", "dev", dev], capture_output=True, text=True,
                             timeout=10).stdout
        entry = next((line.strip() for line in fdb.splitlines() if mac and line.startswith(mac)), "")
        out.append(Hop("tunnel", node, f"{dev}: {via} is-at {mac or '?'}; FDB {entry or 'no entry'}"))
    return out
