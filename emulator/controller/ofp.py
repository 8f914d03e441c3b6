"""Flow values -> os-ken OpenFlow 1.3 messages, with constructors rather than ofctl strings
(os-ken's own advice for new code; ofctl text is kept for rendering and golden files)."""
from __future__ import annotations

import struct
from typing import Any

from os_ken.ofproto import nicira_ext

from emulator.pipeline import flow as fl

NX_NAT_F_SRC = 1 << 0  # OVS's nx-nat flags; os-ken's nicira_ext does not export them
NX_NAT_F_DST = 1 << 1


def _action(parser: Any, ofproto: Any, action: fl.Action) -> Any:
    if isinstance(action, fl.Output):
        return parser.OFPActionOutput(action.port)
    if isinstance(action, fl.OutputInPort):
        return parser.OFPActionOutput(ofproto.OFPP_IN_PORT)
    if isinstance(action, fl.OutputReg):
        f = action.field
        return parser.NXActionOutputReg(nicira_ext.ofs_nbits(f.start, f.end), f"reg{f.reg}", 0)
    if isinstance(action, fl.SetField):
        return parser.OFPActionSetField(**{action.field: action.value})
    if isinstance(action, fl.LoadMark):
        f = action.mark.field
        return parser.NXActionRegLoad(nicira_ext.ofs_nbits(f.start, f.end), f"reg{f.reg}",
                                      action.mark.value)
    if isinstance(action, fl.LoadReg):
        f = action.field
        return parser.NXActionRegLoad(nicira_ext.ofs_nbits(f.start, f.end), f"reg{f.reg}",
                                      action.value)
    if isinstance(action, fl.Move):
        return parser.NXActionRegMove(action.src, action.dst, action.n_bits)
    if isinstance(action, fl.DecTtl):
        return parser.OFPActionDecNwTtl()
    if isinstance(action, fl.Ct):
        nat = []
        if action.nat == "nat":
            nat = [parser.NXActionNAT(flags=0)]
        elif action.nat in ("dst", "src"):
            nat = [parser.NXActionNAT(flags=NX_NAT_F_DST if action.nat == "dst" else NX_NAT_F_SRC,
                                      range_ipv4_min=action.nat_ip,
                                      range_ipv4_max=action.nat_ip,
                                      range_proto_min=action.nat_port or None,
                                      range_proto_max=action.nat_port or None)]
        inner = ([parser.OFPActionSetField(ct_mark=action.mark)] if action.mark else []) + nat
        return parser.NXActionCT(flags=1 if action.commit else 0, zone_src="",
                                 zone_ofs_nbits=action.zone, recirc_table=fl.TABLE_IDS[action.table],
                                 alg=0, actions=inner)
    if isinstance(action, fl.Conjunction):
        return parser.NXActionConjunction(clause=action.clause - 1, n_clauses=action.clauses, id_=action.id)
    if isinstance(action, fl.GroupAction):
        return parser.OFPActionGroup(action.group_id)
    if isinstance(action, fl.Resubmit):
        # NXAST_RESUBMIT_TABLE's port is 16 bits: OpenFlow 1.0's OFPP_IN_PORT (0xfff8) means "same port".
        return parser.NXActionResubmitTable(in_port=0xFFF8, table_id=fl.TABLE_IDS[action.table])
    if isinstance(action, fl.ToController):
        return parser.OFPActionOutput(ofproto.OFPP_CONTROLLER, ofproto.OFPCML_NO_BUFFER)
    if isinstance(action, fl.LearnAffinity):
        l4 = {"TCP": "tcp_dst_nxm", "UDP": "udp_dst_nxm", "SCTP": "sctp_dst_nxm"}[action.protocol]
        proto = fl.IP_PROTO[action.protocol]
        return parser.NXActionLearn(
            table_id=fl.TABLE_IDS[action.table], idle_timeout=action.idle_timeout, priority=200,
            cookie=action.cookie, specs=[
                parser.NXFlowSpecMatch(src=fl.ETH_IP, dst=("eth_type_nxm", 0), n_bits=16),
                parser.NXFlowSpecMatch(src=proto, dst=("ip_proto_nxm", 0), n_bits=8),
                parser.NXFlowSpecMatch(src=("ipv4_src_nxm", 0), dst=("ipv4_src_nxm", 0), n_bits=32),
                parser.NXFlowSpecMatch(src=("ipv4_dst_nxm", 0), dst=("ipv4_dst_nxm", 0), n_bits=32),
                parser.NXFlowSpecMatch(src=(l4, 0), dst=(l4, 0), n_bits=16),
                parser.NXFlowSpecLoad(src=("reg3", 0), dst=("reg3", 0), n_bits=32),
                parser.NXFlowSpecLoad(src=("reg4", 0), dst=("reg4", 0), n_bits=16),
                parser.NXFlowSpecLoad(src=1, dst=("reg4", 16), n_bits=1)])
    raise TypeError(f"no OpenFlow translation for {action!r}")


def flow_mod(datapath: Any, flow: fl.Flow, delete: bool = False) -> Any:
    """An OFPFlowMod that adds (or strictly deletes) ``flow``."""
    parser, ofproto = datapath.ofproto_parser, datapath.ofproto
    match = parser.OFPMatch(**dict(flow.match))
    if delete:
        return parser.OFPFlowMod(datapath, table_id=flow.table_id, priority=flow.priority,
                                 match=match, command=ofproto.OFPFC_DELETE_STRICT,
                                 out_port=ofproto.OFPP_ANY, out_group=ofproto.OFPG_ANY)
    instructions = []
    actions = [_action(parser, ofproto, a) for a in flow.actions]
    if actions:
        instructions.append(parser.OFPInstructionActions(ofproto.OFPIT_APPLY_ACTIONS, actions))
    if flow.goto:
        instructions.append(parser.OFPInstructionGotoTable(fl.TABLE_IDS[flow.goto]))
    return parser.OFPFlowMod(datapath, cookie=flow.cookie, table_id=flow.table_id,
                             priority=flow.priority, match=match, instructions=instructions,
                             command=ofproto.OFPFC_ADD)


def group_mod(datapath: Any, group: fl.Group, command: str) -> Any:
    """OFPGroupMod to add, modify or delete a select group."""
    parser, ofproto = datapath.ofproto_parser, datapath.ofproto
    cmd = {"add": ofproto.OFPGC_ADD, "modify": ofproto.OFPGC_MODIFY, "delete": ofproto.OFPGC_DELETE}[command]
    buckets = [] if command == "delete" else [
        parser.OFPBucket(weight=group.weight(i), watch_port=ofproto.OFPP_ANY, watch_group=ofproto.OFPG_ANY,
                         actions=[_action(parser, ofproto, a) for a in bucket])
        for i, bucket in enumerate(group.buckets)]
    return parser.OFPGroupMod(datapath, cmd, ofproto.OFPGT_SELECT, group.group_id, buckets)


def delete_all_groups(datapath: Any) -> Any:
    parser, ofproto = datapath.ofproto_parser, datapath.ofproto
    return parser.OFPGroupMod(datapath, ofproto.OFPGC_DELETE, ofproto.OFPGT_SELECT, ofproto.OFPG_ALL, [])


def delete_all(datapath: Any) -> Any:
    parser, ofproto = datapath.ofproto_parser, datapath.ofproto
    return parser.OFPFlowMod(datapath, table_id=ofproto.OFPTT_ALL, command=ofproto.OFPFC_DELETE,
                             out_port=ofproto.OFPP_ANY, out_group=ofproto.OFPG_ANY,
                             match=parser.OFPMatch())


class Encoder:
    """OpenFlow bytes for flows and groups, serialized once and reused for every switch and
    every later view that still has them (os-ken builds and serializes a message in tens of
    microseconds; a 50-node cluster sends the same endpoint flows fifty times). Entries unused
    for a whole view are dropped by ``rotate``, as in ``pipeline.build.Memo``."""

    def __init__(self) -> None:
        self.current: dict = {}
        self.previous: dict = {}

    def rotate(self) -> None:
        self.previous, self.current = self.current, {}

    def _get(self, key: tuple, make) -> bytes:
        data = self.current.get(key)
        if data is None:
            data = self.previous.pop(key, None)
            if data is None:
                msg = make()
                msg.xid = 0
                msg.serialize()  # raises for a message OpenFlow cannot carry (a group too large)
                data = bytes(msg.buf)
            self.current[key] = data
        return data

    def flow(self, datapath: Any, flow: fl.Flow, delete: bool = False) -> bytes:
        return self._get(("flow", flow, delete), lambda: flow_mod(datapath, flow, delete))

    def group(self, datapath: Any, group: fl.Group, command: str) -> bytes:
        return self._get(("group", group, command), lambda: group_mod(datapath, group, command))


class Batch:
    """Messages for one switch written as one buffer (one queue entry and one write, instead of
    one per message), each with its own transaction id so that an error names its message."""

    def __init__(self, datapath: Any) -> None:
        self.datapath = datapath
        self.buffer = bytearray()
        self.xids: dict[int, tuple[int, str]] = {}  # xid -> (owner cookie, what) for error reports

    def add(self, data: bytes, cookie: int = 0, what: str = "") -> int:
        xid = (self.datapath.xid + 1) & 0xFFFFFFFF
        self.datapath.xid = xid
        start = len(self.buffer)
        self.buffer += data
        struct.pack_into("!I", self.buffer, start + 4, xid)
        self.xids[xid] = (cookie, what)
        return xid

    def send(self) -> None:
        if self.buffer:
            self.datapath.send(bytes(self.buffer))
            self.buffer = bytearray()
