"""``k8semu trace SRC DST``: names resolved as the cluster resolves them, then the packet followed
through the switches (``emulator/trace``).

What runs on the machine, and why each is the real thing rather than a model of it:
- each switch section: ``ovs-appctl ofproto/trace-packet-out`` on the node's bridge (its flows);
- a Service group's buckets: ``ovs-ofctl dump-groups`` (its groups);
- the tunnel: ``bridge fdb show dev`` on the node's VXLAN device (the kernel's FDB);
- a node's own packets: ``ip route get`` in the node's namespace;
- a DNS name: a query from the source pod's network namespace to the nameservers of the
  resolv.conf kubelet gave it, through the data plane (dnspython; the search list and ndots
  applied as a resolver does).
Every argument is an address or name taken from the cluster's own view, passed as argv.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import subprocess
from dataclasses import dataclass, field, replace

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from emulator.errors import K8semuError, NotFoundError
from emulator.model import naming
from emulator.model.netview import NetworkView, NodeView, PodView, ServicePortView
from emulator.runtime import tracekernel, tracelive
from emulator.runtime.healthcheck import NETNS_DIR, socket_at
from emulator.trace import start
from emulator.pipeline.tables import TABLE_NAMES
from emulator.trace.ofptrace import parse_groups, parse_tables
from emulator.trace.path import Hop, Result, follow

RUN_TIMEOUT = 10


@dataclass(frozen=True)
class Where:
    """The cluster's names for the tracer: bridges, VXLAN devices and namespaces by node,
    external hosts by name (their address)."""
    bridges: dict[str, str]
    vxlans: dict[str, str]
    netns: dict[str, str]  # nodes and external hosts
    external: dict[str, str]
    pod_netns: dict[str, str] = field(default_factory=dict)  # a running pod's IP -> its namespace
    nodes: tuple[str, ...] = ()
    kernel: bool = False  # cni: flannel or calico: netfilter and routes, traced live (``tracekernel``)
    kube_proxy: bool = False  # openflow with kube-proxy beside it: a node's and the outside's attempts meet its rules


class OvsSwitch:
    """The ``Switch`` of ``trace.path``: the node's real bridge, groups and FDB."""

    def __init__(self, where: Where) -> None:
        self.where = where

    def trace(self, node: str, flow: str, actions: str) -> str:
        done = _run(["ovs-appctl", "ofproto/trace-packet-out", self.where.bridges[node], flow, actions])
        return done.stdout if done.returncode == 0 else done.stdout + done.stderr

    def groups(self, node: str) -> dict[int, list[str]]:
        return parse_groups(_run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", self.where.bridges[node]]).stdout)

    def fdb(self, node: str) -> dict[str, str]:
        out = _run(["bridge", "fdb", "show", "dev", self.where.vxlans[node]]).stdout
        entries = {}
        for line in out.splitlines():
            words = line.split()
            if "dst" in words:
                entries[words[0].lower()] = words[words.index("dst") + 1]
        return entries


def table_counters(where: Where) -> dict[str, dict[str, int]]:
    """Packets each table of each node's switch matched so far, tables by name."""
    out = {}
    for node, bridge in where.bridges.items():
        counts = parse_tables(_run(["ovs-ofctl", "-O", "OpenFlow13", "dump-tables", bridge]).stdout)
        out[node] = {TABLE_NAMES.get(t, str(t)): n for t, n in sorted(counts.items()) if t in TABLE_NAMES}
    return out


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT)


@dataclass
class Request:
    source: str
    destination: str
    namespace: str = "default"
    protocol: str = ""  # "" -> the Service port's, else tcp
    port: int | None = None
    endpoint: str = ""  # ip:port the Service group should be followed to
    src_port: int = start.EPHEMERAL_PORT
    live: bool = False  # also send one real connection attempt and report where it was seen


@dataclass
class SourcePod:
    pod: PodView
    netns: str
    resolv_conf: str  # what kubelet wrote for it: where its DNS questions go


def trace(view: NetworkView, where: Where, req: Request, source_pod: SourcePod | None) -> dict:
    """The trace as JSON (``verdict``, ``where``, ``endpoint``, ``hops``).

    Raises:
        NotFoundError: a source or destination the cluster does not have.
        K8semuError: a request that cannot be traced (no port for a pod, outside to a pod).
    """
    if req.protocol not in ("",) + start.PROTOCOLS:
        raise K8semuError(f"--protocol: one of {', '.join(start.PROTOCOLS)}, not {req.protocol!r}")
    hops: list[Hop] = []
    dst_ip, port, protocol, svc = _destination(view, where, req, source_pod, hops)
    if protocol != "icmp" and not port:
        raise K8semuError(f"{req.destination}: name a port (--port), or --protocol icmp")
    kind, name = _split(req.source)
    # beside the controller kube-proxy's netfilter rules, not the switch, take what a node sends
    # and what comes from outside: that attempt is traced live through them, as on flannel
    netfilter = where.kernel or (where.kube_proxy and source_pod is None
                                 and kind in ("node", "external", "") and name in where.netns)
    if req.live or netfilter:
        req = _marked(req)
    if netfilter:
        return _kernel(view, where, req, source_pod, dst_ip, port, protocol, svc, hops)
    source_netns = source_pod.netns if source_pod is not None else where.netns.get(name, "")
    if source_pod is not None:
        packet = start.from_pod(view, source_pod.pod, dst_ip, protocol, port, req.src_port)
    elif kind in ("node", "") and name in where.nodes:
        node = view.node(name)
        packet = start.from_node(view, node, _route(where.netns[name], dst_ip), dst_ip, protocol, port,
                                 req.src_port, hops)
        hops = []  # the node's route is the packet's first hop
        if packet is None:
            return {"verdict": "left", "where": f"node {name}: not through the pod network",
                    "endpoint": "", "hops": [h.to_json() for h in hops]}
    elif kind in ("external", "") and name in where.external:
        packet = _from_outside(view, name, where.external[name], dst_ip, port, protocol, svc, req)
    else:
        raise NotFoundError(f"source {req.source!r}: no such pod in namespace {req.namespace}, node or external host")
    prelude = hops + packet.hops
    result = follow(OvsSwitch(where), view, packet.node, packet.fields, req.endpoint, list(prelude))
    if where.kube_proxy and source_pod is not None and result.verdict == "left" and svc is not None \
            and any(n.ip == dst_ip for n in view.nodes):
        # a pod calling a NodePort beside kube-proxy: the switch hands it to the node, where
        # kube-proxy's rules take it; that part is one live attempt through netfilter, after the
        # switch's hops
        return _kernel(view, where, _marked(req), source_pod, dst_ip, port, protocol, svc, result.hops)
    live = None
    if req.live:
        wire_ip, wire_port = packet.wire or (dst_ip, port)
        result, live = _live(view, where, req, packet, protocol, wire_ip, wire_port, source_netns, prelude, result)
    _underlay_hops(where, result.hops)
    if result.verdict == "left":  # through the gateway into the node's kernel: where its route sends it
        final = result.endpoint.split(":")[0] or dst_ip
        route = _route(where.netns[packet.node], final)
        result.hops.append(Hop("host", packet.node, f"node {packet.node}: ip route get {final} -> "
                               + " ".join(f"{k} {v}" for k, v in route.items())))
    if packet.wire:
        dst_ip, port = packet.wire
    return {**result.to_json(), "source": req.source, "destination": f"{dst_ip}:{port}" if port else dst_ip,
            "protocol": protocol, **({"live": live} if live is not None else {})}


def _marked(req: Request) -> Request:
    """The request with a source port no other connection uses: it marks the real attempt."""
    return replace(req, src_port=secrets.choice(range(42000, 61000)))


TUNNEL = re.compile(r"^VXLAN (\S+) -> (\S+) ")


def _underlay_hops(where: Where, hops: list[Hop]) -> None:
    """After each tunnel hop whose outer packet the node routes through a gateway (nodes in
    several underlay subnets: the underlay router), that route as a hop of its own, read from
    the node's kernel (``ip route get``): the router is one more hop of the outer packet."""
    for i in range(len(hops) - 1, -1, -1):
        hop = hops[i]
        match = TUNNEL.match(hop.text) if hop.kind == "tunnel" else None
        netns = where.netns.get(hop.node, "") if match else ""
        if not netns:
            continue
        route = _route(netns, match.group(2))
        if "via" in route:
            hops.insert(i + 1, Hop("route", hop.node, f"underlay: ip route get {match.group(2)} -> via {route['via']} "
                                                      f"dev {route.get('dev', '?')} (the underlay router, one hop)"))


def _kernel(view: NetworkView, where: Where, req: Request, source_pod: SourcePod | None, dst_ip: str,
            port: int | None, protocol: str, svc: ServicePortView | None, hops: list[Hop]) -> dict:
    """The kernel data planes' trace (``runtime/tracekernel``): where the attempt leaves from."""
    kind, name = _split(req.source)
    wire: tuple[str, int | None] = (dst_ip, port)
    if source_pod is not None:
        netns, node, src_ip = source_pod.netns, source_pod.pod.node, source_pod.pod.ip
    elif kind in ("node", "") and name in where.nodes:
        netns, node = where.netns[name], name
        src_ip = _route(netns, dst_ip).get("src", "")
    elif kind in ("external", "") and name in where.external:
        target, port = _node_port(view, name, dst_ip, port, svc)
        netns, node, src_ip, wire = where.netns[name], target.name, where.external[name], (target.ip, port)
    else:
        raise NotFoundError(f"source {req.source!r}: no such pod in namespace {req.namespace}, node or external host")
    candidates = [e.ip for e in svc.endpoints] if svc is not None else [dst_ip]
    nodes = {n: where.netns[n] for n in where.nodes}
    out = tracekernel.trace(view, nodes, where.pod_netns, req.source, netns, node, src_ip, wire, protocol,
                            req.src_port, candidates, hops)
    return {**out, "source": req.source, "destination": f"{wire[0]}:{wire[1]}" if wire[1] else wire[0],
            "protocol": protocol}


def _live(view: NetworkView, where: Where, req: Request, packet: start.Packet, protocol: str, dst_ip: str,
          port: int | None, source_netns: str, prelude: list[Hop], first: Result) -> tuple[Result, dict]:
    """Send the attempt, watch it, follow the endpoint the switch really picked, and say whether
    what was seen agrees with the static trace."""
    from_node = packet.fields["in_port"] == str(naming.GATEWAY_OFPORT) and source_netns == where.netns.get(packet.node)
    points = [tracelive.Point(f"source {req.source}", source_netns,
                              iface=naming.NODE_GATEWAY_IF if from_node else "eth0")]
    group = next((h for h in first.hops if h.kind == "group"), None)
    targets = [a.split(":")[0] for a in group.actions] if group else []
    final = next((p.ip for p in view.pods if first.where == f"pod {p.namespace}/{p.name}"), None)
    targets += [final] if final else [] if group else [dst_ip]
    pods = {p.ip: p for p in view.pods}
    dest = tracelive.pod_points(view, where.pod_netns, targets)
    # every node the packet may cross: the trace's, and those of every endpoint the group may pick
    crossed = dict.fromkeys([h.node for h in first.hops if h.kind == "table"]
                            + [pods[ip].node for ip in targets if ip in pods])
    if len(crossed) > 1:
        points += [tracelive.Point(f"node {n}", where.netns[n], vxlan=True) for n in crossed]
    src_ip = packet.fields["nw_src"]

    def arrived(_: list) -> bool:
        return any(p.lines for p in dest) or any(tracelive.refused(line, port) for line in points[0].lines)

    sent = tracelive.observe(points + dest, tracelive.send_argv(source_netns, protocol, dst_ip, port, req.src_port),
                             protocol, req.src_port, src_ip, arrived, port)
    real = tracelive.real_endpoint(view.node(packet.node).zone, protocol, src_ip, req.src_port)
    result = first
    if real and real != first.endpoint:
        result = follow(OvsSwitch(where), view, packet.node, packet.fields, real, list(prelude))
    reached = [p.name for p in dest if p.lines]
    refused = any(tracelive.refused(line, port) for line in points[0].lines)
    if result.verdict == "delivered":
        agrees = reached == [result.where]
    elif result.verdict == "rejected":
        agrees = not reached and refused
    elif result.verdict == "dropped":
        agrees = not reached and not refused
    else:
        agrees = bool(points[0].lines)
    seen = [{"at": p.name, "packets": p.lines} for p in points + dest]
    return result, {"sport": req.src_port, "endpoint": real, "reached": reached, "refused": refused,
                    "agrees": agrees, "seen": seen, "exit": sent}


def _split(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition("/")
    return (kind, name) if sep else ("", text)


def _destination(view: NetworkView, where: Where, req: Request, source_pod: SourcePod | None,
                 hops: list[Hop]) -> tuple[str, int | None, str, ServicePortView | None]:
    """(address, port, protocol, the Service port when the address is one) of the destination."""
    kind, name = _split(req.destination)
    ns = req.namespace
    protocol = req.protocol or "tcp"
    if kind in ("svc", "service", "services") or (kind == "" and _services(view, ns, name)):
        ports = _services(view, ns, name)
        if not ports:
            raise NotFoundError(f'services "{name}" not found in namespace {ns}')
        return _service_port(ports, req)
    if kind in ("pod", "pods") or (kind == "" and _pod(view, ns, name)):
        pod = _pod(view, ns, name)
        if pod is None:
            raise NotFoundError(f'pods "{name}" not found in namespace {ns}')
        return pod.ip, req.port, protocol, None
    if kind == "node" or (kind == "" and name in where.nodes):
        return _node_destination(view, name, req)
    if kind == "external" or (kind == "" and name in where.external):
        if name not in where.external:
            raise NotFoundError(f'external host "{name}" not found')
        return where.external[name], req.port, protocol, None
    if kind:
        raise K8semuError(f"{req.destination}: pod/, svc/, node/ or external/ NAME, an address or a DNS name")
    try:
        ip = str(ipaddress.IPv4Address(name))
    except ValueError:
        ip = _resolve(name, source_pod, hops)
    svc_ports = [s for s in view.services if s.cluster_ip == ip or (s.lb_ip and s.lb_ip == ip)]
    if svc_ports:
        return _service_port(svc_ports, req)
    node = next((n for n in view.nodes if n.ip == ip), None)
    if node is not None:
        return _node_destination(view, node.name, req)
    return ip, req.port, protocol, None


def _services(view: NetworkView, ns: str, name: str) -> list[ServicePortView]:
    return [s for s in view.services if s.namespace == ns and s.name == name and s.cluster_ip]


def _pod(view: NetworkView, ns: str, name: str) -> PodView | None:
    return next((p for p in view.pods if p.namespace == ns and p.name == name), None)


def _service_port(ports: list[ServicePortView], req: Request) -> tuple[str, int | None, str, ServicePortView]:
    want = [s for s in ports if (req.port is None or req.port in (s.port, s.node_port))
            and (not req.protocol or s.protocol.lower() == req.protocol)]
    if not want:
        have = ", ".join(f"{s.port}/{s.protocol}" for s in ports)
        raise K8semuError(f"service {ports[0].namespace}/{ports[0].name} has no port {req.port} "
                          f"{req.protocol or ''} (it has {have})".replace("  ", " "))
    svc = want[0]
    return svc.cluster_ip, svc.port, svc.protocol.lower(), svc


def _node_destination(view: NetworkView, name: str, req: Request) -> tuple[str, int | None, str, ServicePortView | None]:
    try:
        node = view.node(name)
    except StopIteration:
        raise NotFoundError(f'nodes "{name}" not found') from None
    svc = next((s for s in view.services if s.node_port and s.node_port == req.port
                and (not req.protocol or s.protocol.lower() == req.protocol)), None)
    return node.ip, req.port, (svc.protocol.lower() if svc else req.protocol or "tcp"), svc


def _from_outside(view: NetworkView, host: str, host_ip: str, dst_ip: str, port: int | None, protocol: str,
                  svc: ServicePortView | None, req: Request) -> start.Packet:
    """An external host reaches the pod network only through a node: its NodePort."""
    node, port = _node_port(view, host, dst_ip, port, svc)
    assert svc is not None  # _node_port refused a destination that is no NodePort
    hop, source = start.node_port_entry(node, svc, host_ip, f"external {host} ({host_ip}) -> {node.ip}:{port}")
    fields = start.gateway_packet(node, source, start.NODEPORT_VIP, protocol, port, req.src_port)
    return start.Packet(node.name, fields, [hop], (node.ip, port))


def _node_port(view: NetworkView, host: str, dst_ip: str, port: int | None,
               svc: ServicePortView | None) -> tuple[NodeView, int]:
    """(the node, its NodePort) an external host's attempt goes to: the node named by address,
    or for a Service named, its NodePort on the last node (a worker).

    Raises:
        K8semuError: the destination is no NodePort.
    """
    node = next((n for n in view.nodes if n.ip == dst_ip), None)
    if svc is not None and node is None and svc.node_port:
        node, port = view.nodes[-1], svc.node_port
    if node is None or svc is None or port != svc.node_port:
        raise K8semuError(f"external host {host} reaches the cluster through a NodePort: trace it to "
                          f"node/NAME --port NODEPORT or to a NodePort Service")
    return node, port


def _route(netns: str, dst_ip: str) -> dict[str, str]:
    """``ip route get`` in a node's namespace: dev, via and src."""
    done = _run(["ip", "-n", netns, "-o", "route", "get", dst_ip])
    words = done.stdout.split()
    return {k: words[words.index(k) + 1] for k in ("via", "dev", "src") if k in words[:-1]}


def _resolve(name: str, source_pod: SourcePod | None, hops: list[Hop]) -> str:
    """The first A record the pod's resolver would get for ``name`` (search list, ndots)."""
    if source_pod is None:
        raise K8semuError(f"{name}: a DNS name is resolved as a pod resolves it; trace from a pod")
    servers, search, ndots = [], [], 1
    for line in source_pod.resolv_conf.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            servers.append(words[1])
        elif words[:1] == ["search"]:
            search = words[1:]
        elif words[:1] == ["options"]:
            ndots = next((int(w.split(":")[1]) for w in words[1:] if w.startswith("ndots:")), ndots)
    if not servers:
        raise K8semuError(f"{name}: pod {source_pod.pod.name} has no nameserver")
    try:
        dns.name.from_text(name)
    except (dns.exception.DNSException, ValueError) as exc:
        raise K8semuError(f"{name}: not a DNS name ({exc})") from None
    absolute = name.endswith(".")
    names = [name] if absolute else (
        [f"{name}.{s}" for s in search] + [name] if name.count(".") < ndots else [name] + [f"{name}.{s}" for s in search])
    server = servers[0]
    for qname in names:
        try:
            answer = _ask(source_pod.netns, server, qname)
        except (dns.exception.DNSException, OSError) as exc:
            hops.append(Hop("dns", source_pod.pod.node, f"DNS {qname} A -> {server}: no answer ({exc})"))
            raise K8semuError(f"{name}: {server} did not answer from pod {source_pod.pod.name}") from None
        ips = [r.address for rr in answer.answer if rr.rdtype == dns.rdatatype.A for r in rr]
        rcode = dns.rcode.to_text(answer.rcode())
        if ips:
            hops.append(Hop("dns", source_pod.pod.node, f"DNS from pod {source_pod.pod.namespace}/"
                            f"{source_pod.pod.name}: {qname.rstrip('.')}. A -> nameserver {server}: {rcode}, "
                            f"{', '.join(ips)}"))
            return ips[0]
        hops.append(Hop("dns", source_pod.pod.node, f"DNS {qname.rstrip('.')}. A -> nameserver {server}: {rcode}"))
    raise NotFoundError(f"{name}: no A record from {server} (tried {', '.join(names)})")


def _ask(netns: str, server: str, qname: str) -> dns.message.Message:
    sock = socket_at(os.path.join(NETNS_DIR, netns), socket.SOCK_DGRAM)
    try:
        return dns.query.udp(dns.message.make_query(qname.rstrip(".") + ".", "A"), server, timeout=2, sock=sock)
    finally:
        sock.close()
