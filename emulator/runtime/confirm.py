"""Whether the data plane holds what the API shows: each node's confirmed generation (the view
its switch confirmed on openflow, read from the controller's status file; the view its
kube-proxy loaded, and on calico the routes BIRD brought, on the kernel planes), the DNS
servers' and the ingress controller's acknowledged snapshots, and the start-up warnings when a
switch or a node's kube-proxy never gets there. A mixin of ``Manager`` (split from
``runtime/manager.py``); every change request and every wait of the scenarios and tests ends in
``synced``.
"""
from __future__ import annotations

import json
import time

from emulator.cluster.store import Record
from emulator.errors import RuntimeFailure
from emulator.model import naming

SWITCH_DEADLINE = 30.0


class Confirmation:
    def _controller_stat(self) -> tuple:
        try:
            info = (self.run / "controller.json").stat()
        except OSError:
            return ()
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _read_controller(self) -> dict:
        """The controller's status file, read again only when it was replaced (every pod's
        readiness check asks for it)."""
        with self.status_lock:
            return self._read_controller_locked()

    def _read_controller_locked(self) -> dict:
        path = self.run / "controller.json"
        try:
            seen = self._controller_stat()
            if not seen:
                raise FileNotFoundError(path)
            if seen != self.controller_seen:
                self.controller_status = json.loads(path.read_text())
                self.controller_seen = seen
                got = self.controller_status.get("synced", {})
                self.generations = {n.name: got.get(str(naming.datapath_id(self.records.scope, n.index)), -1)
                                    for n in self.config.nodes}
        except (OSError, ValueError):
            self.controller_status, self.controller_seen = {}, ()
            self.generations = {n.name: -1 for n in self.config.nodes}
        return self.controller_status

    def switch_generations(self) -> dict[str, int]:
        """Each node's data plane's generation: the view its switch confirmed (openflow), or the
        view its kube-proxy loaded (flannel, calico); with kube-proxy beside the controller, the
        older of the two."""
        if self.config.kernel_dataplane:
            return self.proxier.generations()
        with self.status_lock:
            self._read_controller_locked()
            gens = dict(self.generations)
        if self.proxier is not None:
            loaded = self.proxier.generations()
            gens = {name: min(g, loaded.get(name, -1)) for name, g in gens.items()}
        return gens

    def _system_pods_current(self) -> bool:
        """The DNS servers and the ingress controller have loaded the latest snapshot they read."""
        for rec in self.state.pods():
            mounts = rec.obj.spec.system_mounts
            if not mounts or rec.deleting or not rec.status.ready or not self.kubelet \
                    or rec.obj.key in self.frozen_pods or rec.status.node in self.state.stopped:
                continue  # a frozen pod (a fault, a stopped node) loads nothing until it is thawed
            box = self.kubelet.boxes.get(rec.obj.key)
            if box is None:
                continue
            want = max(self.snapshots.get(m, (None, 0))[1] for m in mounts)
            for c in rec.obj.spec.containers:
                try:
                    if int((box.directory / c.name / "ack").read_text() or -1) < want:
                        return False
                except (OSError, ValueError):
                    return False
        return True

    def synced(self) -> bool:
        """Every switch holds the latest view, and every DNS server and ingress controller the
        latest snapshot: what the API shows is what the data plane does."""
        gens = self.switch_generations()
        return all(g >= self.published for g in gens.values()) and self._system_pods_current()

    def _dataplane_ready(self, rec: Record) -> bool:
        """A pod's node's switch holds the pod's flows (its containers may start); a
        ``hostNetwork`` pod has none to wait for."""
        if rec.obj.spec.host_network or self.config.kernel_dataplane:  # flannel: the network is the CNI ADD's
            return True
        wanted = self.pod_generation.get(rec.obj.key)
        if wanted is None:
            return False
        self._read_controller()
        return self.generations.get(rec.status.node, -1) >= wanted

    def wait_synced(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(g >= self.published for g in self.switch_generations().values()):
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"switches did not connect to the controller within "
                                     f"{timeout}s (see {self.run / 'controller.log'})")
            self.supervisor.check()
            time.sleep(0.01)

    def _check_switches(self) -> None:
        """Say once, loudly, when a switch has not confirmed any view 30 s after start-up."""
        if self.proxier is not None:
            self._report_proxier()
        if self.config.kernel_dataplane:
            return
        if self.switches_warned or time.monotonic() - self.started < SWITCH_DEADLINE:
            return
        with self.status_lock:
            self._read_controller_locked()
            missing = [name for name, gen in self.generations.items() if gen < 0]
        if missing:
            self.switches_warned = True
            self._helper_report("controller", f"switches of {', '.join(missing)} have not connected to the controller "
                                              f"within {SWITCH_DEADLINE:.0f}s (see {self.run / 'controller.log'})")

    def _report_proxier(self) -> None:
        """A node whose kube-proxy rules did not load: a Warning Event, once per message."""
        for node, rules in self.proxier.nodes.items():
            if rules.error and (node, rules.error) not in self.reported:
                self.reported.add((node, rules.error))
                self.state.events.warn("Node", "", node, "FailedToSyncProxyRules", rules.error, "kube-proxy")
                print(f"[WARN] kube-proxy on {node}: {rules.error}", flush=True)
