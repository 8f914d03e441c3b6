"""The os-ken application: watch the network view, keep every switch's flows equal to the
pipeline's output for it, and report which view generation each switch holds.

The manager writes ``view.json`` atomically (rename); we poll its mtime every 20 ms, which is
well inside the 200 ms convergence budget and needs no extra dependency. ``status.json`` says,
per datapath id, the last generation confirmed by a barrier reply: the manager reads it to know
when a change is really in the data plane.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from emulator.controller import ofp
from emulator.controller.reject import build_reject
from emulator.controller.sync import diff, diff_groups
from emulator.pipeline.build import build_node, groups_for_node
from emulator.model.netview import NetworkView

POLL_SECONDS = 0.02


class K8semuController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.view_path = Path(os.environ["K8SEMU_VIEW"])
        self.status_path = Path(os.environ["K8SEMU_STATUS"])
        self.view: NetworkView | None = None
        self.seen: tuple = ()  # (inode, mtime_ns, size) of the view last read
        self.datapaths: dict[int, object] = {}
        self.installed: dict[int, dict] = {}
        self.groups: dict[int, dict] = {}
        self.pending: dict[int, tuple[int, int]] = {}  # dpid -> (barrier xid, generation)
        self.synced: dict[int, int] = {}
        self.problems: dict[int, list] = {}  # dpid -> [(cookie, message)] of flows refused
        hub.spawn(self._watch)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev) -> None:
        dp = ev.msg.datapath
        dp.send_msg(ofp.delete_all(dp))  # a reconnecting switch starts from a clean table
        dp.send_msg(ofp.delete_all_groups(dp))
        self.datapaths[dp.id], self.installed[dp.id], self.groups[dp.id] = dp, {}, {}
        self._sync_one(dp)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev) -> None:
        dpid = ev.datapath.id
        for table in (self.datapaths, self.installed, self.groups, self.pending, self.synced):
            table.pop(dpid, None)
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev) -> None:
        dpid = ev.msg.datapath.id
        xid, generation = self.pending.get(dpid, (None, 0))
        if ev.msg.xid == xid:
            self.synced[dpid] = generation
            self._write_status()

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev) -> None:
        """Only ServiceLB sends packets here: connections to a Service with no endpoints."""
        msg = ev.msg
        dp = msg.datapath
        frame = build_reject(msg.data)
        if frame is None:
            return
        parser, ofproto = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofproto.OFP_NO_BUFFER, in_port=ofproto.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(msg.match["in_port"])], data=frame))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev) -> None:
        self.logger.error("switch %s refused a message: type=%s code=%s", ev.msg.datapath.id,
                          ev.msg.type, ev.msg.code)

    def _watch(self) -> None:
        while True:
            try:
                # the manager replaces the file (a new inode each time): two writes within one
                # mtime tick are still told apart
                info = self.view_path.stat()
                seen = (info.st_ino, info.st_mtime_ns, info.st_size)
                if seen != self.seen:
                    self.seen = seen
                    self.view = NetworkView.from_json(self.view_path.read_text())
                    for dp in list(self.datapaths.values()):
                        self._sync_one(dp)
            except (OSError, ValueError) as exc:
                self.logger.warning("cannot read the network view: %s", exc)
            hub.sleep(POLL_SECONDS)

    def _sync_one(self, dp) -> None:
        """One switch's sync; a failure there (a bug) is that switch's, not the others'."""
        try:
            self._sync(dp)
        except Exception:
            self.logger.exception("switch %s: failed to apply view generation %s", dp.id,
                                  self.view.generation if self.view else "?")

    def _sync(self, dp) -> None:
        if self.view is None or self.view.node_by_dpid(dp.id) is None:
            return
        node = self.view.node_by_dpid(dp.id)
        groups = self.groups[dp.id]
        g_add, g_mod, g_del = diff_groups(groups, groups_for_node(self.view, node.name))
        refused: list = []
        for group in g_add + g_mod:  # groups before the flows that point at them
            try:
                message = ofp.group_mod(dp, group, "add" if group in g_add else "modify")
                message.serialize()  # too large for OpenFlow, say: refused alone, reported
            except Exception as exc:
                refused.append((group.cookie, f"group {group.group_id}: {exc}"))
                continue
            dp.send_msg(message)
            groups[group.group_id] = group
        installed = self.installed[dp.id]
        built = build_node(self.view, node.name)
        problems = built.problems + refused
        if problems != self.problems.get(dp.id, []):
            self.problems[dp.id] = problems
            for cookie, message in problems:
                self.logger.error("switch %s: %s", dp.id, message)
        adds, deletes = diff(installed, built.flows)
        for flow in deletes:
            dp.send_msg(ofp.flow_mod(dp, flow, delete=True))
            installed.pop(flow.key, None)
        for flow in adds:
            dp.send_msg(ofp.flow_mod(dp, flow))
            installed[flow.key] = flow
        for group in g_del:  # and deleted after the flows that used them
            dp.send_msg(ofp.group_mod(dp, group, "delete"))
            groups.pop(group.group_id, None)
        barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(barrier)
        self.pending[dp.id] = (barrier.xid, self.view.generation)
        dp.send_msg(barrier)

    def _write_status(self) -> None:
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "synced": self.synced, "problems": self.problems}))
        tmp.replace(self.status_path)
