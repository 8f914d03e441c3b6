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

from emulator.controller import ofp, revalidate
from emulator.controller.reject import build_reject
from emulator.controller.sync import diff, diff_groups
from emulator.pipeline.build import Memo, build_node, groups_for_node
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
        self.confirming: dict[int, int] = {}  # dpid -> generation its barrier confirmed, cache not yet purged
        self.purging = False
        self.ovs_run = Path(os.environ["K8SEMU_OVS_RUN"])
        self.purge_problem = ""  # why the last purge failed ("" when it worked)
        self.problems: dict[int, list] = {}  # dpid -> [(cookie, message)] of flows refused
        self.refused: dict[int, list] = {}  # dpid -> [(cookie, message)] the switch itself refused
        self.sent: dict[int, dict] = {}  # dpid -> {xid: (cookie, what)} of the last sync
        self.memo = Memo()
        self.encoder = ofp.Encoder()
        hub.spawn(self._watch)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev) -> None:
        dp = ev.msg.datapath
        dp.send_msg(ofp.delete_all(dp))  # a reconnecting switch starts from a clean table
        dp.send_msg(ofp.delete_all_groups(dp))
        self.datapaths[dp.id], self.installed[dp.id], self.groups[dp.id] = dp, {}, {}
        self.refused.pop(dp.id, None)
        self._sync_one(dp)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev) -> None:
        dpid = ev.datapath.id
        for table in (self.datapaths, self.installed, self.groups, self.pending, self.synced, self.confirming):
            table.pop(dpid, None)
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev) -> None:
        dpid = ev.msg.datapath.id
        xid, generation = self.pending.get(dpid, (None, 0))
        if ev.msg.xid == xid:
            self.confirming[dpid] = generation
            if not self.purging:
                self.purging = True
                hub.spawn(self._confirm)

    def _confirm(self) -> None:
        """Confirm what the switches' barriers confirmed once the datapath's flow cache cannot
        still act on the flows they replaced (``revalidate``): one purge for every switch whose
        reply came in meanwhile (a view reaches every switch at once); switches confirming
        during a purge get another, as their flows may have changed after it began."""
        hub.sleep(0)  # the other switches' barrier replies of this view first
        try:
            while self.confirming:
                batch, self.confirming = self.confirming, {}
                try:
                    revalidate.purge(self.ovs_run)
                    problem = ""
                except revalidate.PurgeFailed as exc:  # confirmed anyway: the tables are right
                    problem = str(exc)
                if problem != self.purge_problem:
                    self.purge_problem = problem
                    if problem:
                        self.logger.warning("cannot empty the datapath flow cache; a change may take "
                                            "effect up to a revalidation later than confirmed: %s", problem)
                self.synced.update({dpid: g for dpid, g in batch.items() if dpid in self.datapaths})
                self._write_status()
        finally:
            self.purging = False

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
        """A switch refused a message: reported against the object that owns it."""
        dpid = ev.msg.datapath.id
        cookie, what = self.sent.get(dpid, {}).get(ev.msg.xid, (0, "a message"))
        what = what() if callable(what) else what
        message = f"switch refused {what}: OpenFlow error type={ev.msg.type} code={ev.msg.code}"
        self.logger.error("switch %s: %s", dpid, message)
        self.refused.setdefault(dpid, []).append((cookie, message))
        del self.refused[dpid][:-20]  # the latest few are enough to say what is wrong
        self._write_status()

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
                    self.memo.rotate()  # after every switch had the view: what it did not use goes
                    self.encoder.rotate()
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
        """Send one switch what changed between what it holds and the view: groups first (flows
        point at them), flow deletions and additions, group deletions last, then a barrier whose
        reply confirms the generation; all as one write."""
        if self.view is None or self.view.node_by_dpid(dp.id) is None:
            return
        node = self.view.node_by_dpid(dp.id)
        groups = self.groups[dp.id]
        batch = ofp.Batch(dp)
        g_add, g_mod, g_del = diff_groups(groups, groups_for_node(self.view, node.name, self.memo))
        refused: list = []
        for group in g_add + g_mod:
            try:
                data = self.encoder.group(dp, group, "add" if group in g_add else "modify")
            except Exception as exc:  # too large for OpenFlow, say: refused alone, reported
                refused.append((group.cookie, f"group {group.group_id}: {exc}"))
                continue
            batch.add(data, group.cookie, f"group {group.group_id}")
            groups[group.group_id] = group
        installed = self.installed[dp.id]
        built = build_node(self.view, node.name, self.memo)
        problems = built.problems + refused
        if problems != self.problems.get(dp.id, []):
            self.problems[dp.id] = problems
            for cookie, message in problems:
                self.logger.error("switch %s: %s", dp.id, message)
        adds, deletes = diff(installed, built.flows)
        for flow in deletes:
            batch.add(self.encoder.flow(dp, flow, delete=True), flow.cookie, lambda f=flow: f"delete {f.to_ofctl()}")
            installed.pop(flow.key, None)
        for flow in adds:
            batch.add(self.encoder.flow(dp, flow), flow.cookie, flow.to_ofctl)
            installed[flow.key] = flow
        for group in g_del:
            batch.add(self.encoder.group(dp, group, "delete"), group.cookie, f"delete group {group.group_id}")
            groups.pop(group.group_id, None)
        barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
        barrier.xid = 0
        barrier.serialize()
        xid = batch.add(bytes(barrier.buf))
        self.pending[dp.id] = (xid, self.view.generation)
        self.sent[dp.id] = batch.xids
        batch.send()

    def _write_status(self) -> None:
        tmp = self.status_path.with_suffix(".tmp")
        problems = {dpid: self.problems.get(dpid, []) + self.refused.get(dpid, [])
                    for dpid in set(self.problems) | set(self.refused)}
        tmp.write_text(json.dumps({"pid": os.getpid(), "synced": self.synced, "problems": problems}))
        tmp.replace(self.status_path)
