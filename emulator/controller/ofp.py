"""Flow values -> os-ken OpenFlow 1.3 messages, with constructors rather than ofctl strings
(os-ken's own advice for new code; ofctl text is kept for rendering and golden files)."""
from __future__ import annotations

from typing import Any

from os_ken.ofproto import nicira_ext

from emulator.pipeline import flow as fl


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


def delete_all(datapath: Any) -> Any:
    parser, ofproto = datapath.ofproto_parser, datapath.ofproto
    return parser.OFPFlowMod(datapath, table_id=ofproto.OFPTT_ALL, command=ofproto.OFPFC_DELETE,
                             out_port=ofproto.OFPP_ANY, out_group=ofproto.OFPG_ANY,
                             match=parser.OFPMatch())
