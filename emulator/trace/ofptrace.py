"""Reading what Open vSwitch's tracer prints: ``ovs-appctl ofproto/trace-packet-out`` stages,
flow strings and ``ovs-ofctl dump-groups`` buckets.

Why parse text: the tracer is the switch's own account of what its tables do with a packet (the
real flows, the real groups, its own matching), and ``ofproto/trace`` has no structured output.
Only the first section of an answer is read (up to the first recirculation): where the switch
would recirculate (conntrack, a select group's hash), ``path`` decides what the next section is
and asks again, so a trace never depends on conntrack state the tracer makes up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

STEP = re.compile(r"^\s*(\d+)\. (?:(.*), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$")
ODP_SECTION = re.compile(r"^={20,}$")


@dataclass
class Step:
    """One flow the packet matched: its table, match, priority, cookie and the actions printed."""
    table: int
    match: str
    priority: int
    cookie: int | None
    actions: list[str] = field(default_factory=list)


@dataclass
class Stage:
    """The first section of a trace: the flows matched in order, the packet's fields after them
    and the datapath actions the switch would run."""
    steps: list[Step]
    final_flow: str
    datapath_actions: str
    notes: list[str] = field(default_factory=list)  # the tracer's "->" remarks (no live bucket, ...)


def parse_stage(text: str) -> Stage:
    """The first section of ``ofproto/trace``/``trace-packet-out`` output.

    Raises:
        ValueError: the text is not a trace (the switch answered with an error).
    """
    steps: list[Step] = []
    notes: list[str] = []
    initial = final = actions = ""
    for line in text.splitlines():
        if ODP_SECTION.match(line.strip()):
            break
        if line.startswith("Flow: ") and not initial:
            initial = line[len("Flow: "):].strip()
            continue
        if line.startswith("Final flow: "):
            final = line[len("Final flow: "):].strip()
            continue
        if line.startswith("Datapath actions: "):
            actions = line[len("Datapath actions: "):].strip()
            continue
        m = STEP.match(line)
        if m:
            steps.append(Step(int(m.group(1)), m.group(2) or "", int(m.group(3)),
                              int(m.group(4), 16) if m.group(4) else None))
            continue
        body = line.strip()
        if body.startswith("->"):
            notes.append(body[2:].strip())
            if steps:
                steps[-1].actions.append(body)
        elif body and steps and line.startswith("    ") and not body.startswith(("bridge(", "---")):
            steps[-1].actions.append(body)
    if not initial:
        raise ValueError(f"not a trace: {text.strip()[:200]!r}")
    return Stage(steps, initial if final in ("", "unchanged") else final, actions, notes)


def parse_flow(text: str) -> dict[str, str]:
    """``tcp,reg0=0x3,in_port=102,...`` as an ordered dict (protocol words map to "")."""
    out: dict[str, str] = {}
    for part in _split_top(text):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def format_flow(fields: dict[str, str]) -> str:
    """The flow as ``ofproto/trace`` reads it back: its parser takes ``tp_src``/``tp_dst`` for
    TCP only (it prints them for UDP too), so UDP's are spelled ``udp_src``/``udp_dst``."""
    udp = "udp" in fields
    names = {"tp_src": "udp_src", "tp_dst": "udp_dst"} if udp else {}
    return ",".join(names.get(k, k) if v == "" else f"{names.get(k, k)}={v}" for k, v in fields.items())


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses (``ct(commit,nat(dst=...))`` is one action)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += (ch == "(") - (ch == ")")
        cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return [p for p in (x.strip() for x in parts) if p]


def split_actions(text: str) -> list[str]:
    return _split_top(text)


@dataclass(frozen=True)
class Ct:
    """A ``ct(...)`` action that recirculates: where the packet resumes and what NAT it applies."""
    table: int
    zone: int
    commit: bool
    nat_dst: tuple[str, int | None] | None
    nat_src: tuple[str, int | None] | None
    mark: int | None


CT_NAT = re.compile(r"nat\((dst|src)=([0-9.]+)(?::(\d+))?")


def parse_ct(action: str) -> Ct | None:
    """The recirculating ``ct(table=N,...)`` of one action, or None."""
    if not action.startswith("ct(") or "table=" not in action:
        return None
    table = int(re.search(r"table=(\d+)", action).group(1))  # type: ignore[union-attr]
    zone_m = re.search(r"zone=(\d+)", action)
    mark_m = re.search(r"set_field:(0x[0-9a-f]+|\d+)->ct_mark", action)
    nats = {m.group(1): (m.group(2), int(m.group(3)) if m.group(3) else None) for m in CT_NAT.finditer(action)}
    return Ct(table, int(zone_m.group(1)) if zone_m else 0, action.startswith("ct(commit") or ",commit" in action,
              nats.get("dst"), nats.get("src"), int(mark_m.group(1), 0) if mark_m else None)


def parse_groups(dump: str) -> dict[int, list[str]]:
    """``ovs-ofctl dump-groups``: group id -> each bucket's actions (in order)."""
    groups: dict[int, list[str]] = {}
    for line in dump.splitlines():
        m = re.search(r"group_id=(\d+),", line)
        if not m:
            continue
        buckets = re.split(r",?bucket=", line)[1:]
        groups[int(m.group(1))] = [b.split("actions=", 1)[1] for b in buckets if "actions=" in b]
    return groups


def bucket_target(actions: str) -> tuple[str, int | None]:
    """The endpoint a Service group's bucket loads (reg3 = IP, reg4[0..15] = port)."""
    ip_m = re.search(r"load:(0x[0-9a-f]+)->NXM_NX_REG3\[\]", actions)
    port_m = re.search(r"load:(0x[0-9a-f]+)->NXM_NX_REG4\[0\.\.15\]", actions)
    ip = ""
    if ip_m:
        v = int(ip_m.group(1), 16)
        ip = ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))
    return ip, int(port_m.group(1), 16) if port_m else None


def parse_tables(dump: str) -> dict[int, int]:
    """``ovs-ofctl dump-tables``: table id -> packets matched (the web view's moving counters)."""
    counts, table = {}, None
    for line in dump.splitlines():
        m = re.match(r"\s*table (\d+)", line)
        if m:
            table = int(m.group(1))
            continue
        m = re.search(r"matched=(\d+)", line)
        if m and table is not None:
            counts[table] = int(m.group(1))
    return counts
