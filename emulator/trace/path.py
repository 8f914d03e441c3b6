"""Following one packet through the OpenFlow data plane, switch after switch.

The switch traces each section itself (``ofproto/trace-packet-out``: its real flows and groups);
this module decides what happens between sections, where the real switch would recirculate:

- ``ct(table=N)``: the packet comes back from conntrack as the connection's first packet
  (``ct_state=new|trk``, the zone, the NAT the action asked for, the ct_mark it set): a static
  trace is a new connection, as Antrea's Traceflow injects one;
- a Service's select group (``dp_hash``, chosen by the datapath at run time): its buckets are
  read from the switch, every endpoint is reported, and the trace follows the one asked for
  (``endpoint``) or the first;
- the tunnel port: the VXLAN device's FDB maps the destination VTEP MAC to a node; the trace
  continues on that node's switch from its tunnel port with the inner packet.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from emulator.model import naming
from emulator.model.netview import NetworkView, NodeView
from emulator.pipeline.build import describe_cookie
from emulator.pipeline.tables import PIPELINE, TABLE_NAMES
from emulator.trace.ofptrace import (Stage, bucket_target, format_flow, parse_ct, parse_flow, parse_stage,
                                     split_actions)

MAX_STAGES = 40  # a loop in the tables would otherwise never end
PER_PACKET = ("recirc_id", "ct_state", "ct_zone", "ct_mark", "ct_label", "ct_nw_src", "ct_nw_dst", "ct_nw_proto",
              "ct_tp_src", "ct_tp_dst", "dp_hash")


class Switch(Protocol):
    """What the tracer needs of a node's switch (the runtime runs ovs-appctl/ovs-ofctl)."""

    def trace(self, node: str, flow: str, actions: str) -> str: ...

    def groups(self, node: str) -> dict[int, list[str]]: ...

    def fdb(self, node: str) -> dict[str, str]: ...  # VTEP MAC -> the peer node address


@dataclass
class Hop:
    kind: str  # dns | host | table | group | conntrack | tunnel | deliver | drop | reject | leave
    node: str
    text: str  # one line for people
    table: str = ""
    match: str = ""
    actions: list[str] = field(default_factory=list)
    owner: str = ""

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", [])}


@dataclass
class Result:
    hops: list[Hop]
    verdict: str  # delivered | dropped | rejected | left | unknown
    where: str  # the pod, node or reason the verdict names
    endpoint: str = ""  # the endpoint a Service group picked (ip:port), when one did

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "where": self.where, "endpoint": self.endpoint,
                "hops": [h.to_json() for h in self.hops]}


TABLE_DOCS = {i: t.doc for i, t in enumerate(PIPELINE)}


def follow(switch: Switch, view: NetworkView, node: str, packet: dict[str, str],
           endpoint: str = "", hops: list[Hop] | None = None) -> Result:
    """Trace ``packet`` (flow fields; ``in_port`` says where it enters) from ``node``'s switch
    until it is delivered, dropped, rejected or leaves the pod network."""
    hops = hops if hops is not None else []
    flow, actions, chosen = dict(packet), "resubmit(,0)", ""
    groups: dict[str, dict[int, list[str]]] = {}
    for _ in range(MAX_STAGES):
        stage = parse_stage(switch.trace(node, format_flow(flow), actions))
        hops += [_table_hop(view, node, s) for s in stage.steps]
        final = parse_flow(stage.final_flow)
        last = stage.steps[-1] if stage.steps else None
        ct = next((c for c in (parse_ct(a) for a in (last.actions if last else [])) if c), None)
        if ct is not None:
            flow = _after_ct(final, ct)
            hops.append(Hop("conntrack", node, _ct_text(ct, flow)))
            actions = f"resubmit(,{ct.table})"
            continue
        group = _unresolved_group(stage)
        if group is not None:
            buckets = groups.setdefault(node, switch.groups(node)).get(group, [])
            if not buckets:
                hops.append(Hop("drop", node, f"group {group} has no buckets"))
                return Result(hops, "dropped", f"{node}: group {group} is empty")
            targets = [bucket_target(b) for b in buckets]
            names = [f"{ip}:{port}" for ip, port in targets]
            pick = names.index(endpoint) if endpoint in names else 0
            chosen = names[pick]
            hops.append(Hop("group", node, f"group {group} picks one of {len(names)} endpoint(s) by a hash of the "
                            f"connection ({', '.join(names)}); traced: {chosen}", actions=names))
            flow, actions = final, buckets[pick]
            continue
        port = _output_port(stage)
        if port is None:
            return _stopped(hops, node, stage, last, view, chosen)
        if port == naming.TUNNEL_OFPORT:
            peer = _peer(switch, view, node, final.get("dl_dst", ""))
            if peer is None:
                hops.append(Hop("drop", node, f"the tunnel has no VTEP for {final.get('dl_dst')}"))
                return Result(hops, "dropped", f"{node}: no VTEP", chosen)
            src = view.node(node)
            hops.append(Hop("tunnel", node, f"VXLAN {src.ip} -> {peer.ip} (FDB {final.get('dl_dst')} dst "
                            f"{peer.ip}, UDP 4789); inner {final.get('nw_src')} -> {final.get('nw_dst')}"))
            node = peer.name
            flow = {k: v for k, v in final.items() if k not in PER_PACKET and not k.startswith("reg")}
            flow["in_port"] = str(naming.TUNNEL_OFPORT)
            actions = "resubmit(,0)"
            continue
        if port == naming.GATEWAY_OFPORT:
            hops.append(Hop("leave", node, f"to node {node}'s own network stack through its gateway "
                            f"({final.get('nw_dst')})"))
            return Result(hops, "left", f"node {node}", chosen)
        pod = next((p for p in view.pods if p.node == node and p.ofport == port), None)
        where = f"pod {pod.namespace}/{pod.name}" if pod else f"port {port}"
        hops.append(Hop("deliver", node, f"delivered to {where} ({final.get('nw_dst')}:{final.get('tp_dst', '')})"
                        .replace(":)", ")")))
        return Result(hops, "delivered", where, chosen)
    hops.append(Hop("drop", node, f"more than {MAX_STAGES} trace sections: a loop?"))
    return Result(hops, "unknown", "loop", chosen)


def _table_hop(view: NetworkView, node: str, step) -> Hop:
    name = TABLE_NAMES.get(step.table, str(step.table))
    owner = describe_cookie(view, step.cookie) if step.cookie else "pipeline"
    shown = [a for a in step.actions if not a.startswith("->")]
    return Hop("table", node, f"{name}: {step.match or 'any'} (priority {step.priority}) -> "
               f"{', '.join(shown) or 'nothing'}", name, step.match, shown, owner)


def _after_ct(final: dict[str, str], ct) -> dict[str, str]:
    flow = {k: v for k, v in final.items() if k not in PER_PACKET}
    out = {"ct_state": "new|trk", "ct_zone": str(ct.zone)}
    if ct.mark is not None:
        out["ct_mark"] = hex(ct.mark)
    for key, nat in (("dst", ct.nat_dst), ("src", ct.nat_src)):
        if nat:
            flow[f"nw_{key}"] = nat[0]
            if nat[1] is not None:
                flow[f"tp_{key}"] = str(nat[1])
    return {**out, **flow}


def _ct_text(ct, flow: dict[str, str]) -> str:
    what = "commits the connection" if ct.commit else "looks the packet up"
    nat = ""
    if ct.nat_dst:
        nat = f", DNAT to {flow.get('nw_dst')}:{flow.get('tp_dst', '')}".rstrip(":")
    if ct.nat_src:
        nat += f", SNAT to {flow.get('nw_src')}"
    return f"conntrack zone {ct.zone} {what}{nat}; a new connection resumes at {TABLE_NAMES.get(ct.table, ct.table)}"


def _unresolved_group(stage: Stage) -> int | None:
    """The select group the switch left to the datapath's hash (``no live bucket`` in a trace)."""
    for step in reversed(stage.steps):
        for i, action in enumerate(step.actions):
            if action.startswith("group:") and any("no live bucket" in a for a in step.actions[i:]):
                return int(action.split(":", 1)[1])
    return None


def _output_port(stage: Stage) -> int | None:
    for note in reversed(stage.notes):
        if note.startswith("output port is "):
            return int(note.split()[-1])
    for step in reversed(stage.steps):
        for action in step.actions:
            if action.startswith("output:") and action[7:].isdigit():
                return int(action[7:])
    return None


def _peer(switch: Switch, view: NetworkView, node: str, mac: str) -> NodeView | None:
    """The node the VXLAN device's FDB sends ``mac`` to (the real entry, read from the kernel)."""
    ip = switch.fdb(node).get(mac.lower())
    return next((n for n in view.nodes if n.ip == ip and n.name != node), None)


def _stopped(hops: list[Hop], node: str, stage: Stage, last, view: NetworkView, chosen: str) -> Result:
    """No output: the controller (a reject), or a drop: say which flow decided it."""
    acts = split_actions(stage.datapath_actions)
    if last is not None and any(a.startswith("controller") or a.startswith("CONTROLLER") for a in last.actions):
        table = TABLE_NAMES.get(last.table, str(last.table))
        owner = describe_cookie(view, last.cookie) if last.cookie else "pipeline"
        hops.append(Hop("reject", node, f"sent to the controller by {table} ({owner}): it answers with a reject "
                        "(TCP RST, ICMP port unreachable), as kube-proxy does for a Service without endpoints",
                        table, last.match, owner=owner))
        return Result(hops, "rejected", f"{node}: {table} ({owner})", chosen)
    if last is None:
        hops.append(Hop("drop", node, "no flow matched"))
        return Result(hops, "dropped", f"{node}: no flow", chosen)
    table = TABLE_NAMES.get(last.table, str(last.table))
    owner = describe_cookie(view, last.cookie) if last.cookie else "pipeline"
    why = "table-miss" if last.priority == 0 else f"a flow of {owner}"
    hops.append(Hop("drop", node, f"dropped in {table} by {why} ({TABLE_DOCS.get(last.table, '')}); datapath: "
                    f"{', '.join(acts) or 'drop'}", table, last.match, owner=owner))
    return Result(hops, "dropped", f"{node}: {table} ({owner})", chosen)
