"""``k8semu fault kill|stop|start COMPONENT`` and ``k8semu node stop|start`` (issue #16): the
manager's side, a mixin of ``Manager`` beside ``Requests``. What each action does to each component is
``emulator.model.components``' docstring; here is how:

- pod-run components (CoreDNS, the ingress controller): SIGKILL to their containers' processes
  (the kubelet sees the exit and restarts them), or SIGSTOP/SIGCONT to every process of the pods'
  cgroups. A frozen pod is left out of the barrier that waits for every DNS server and ingress
  controller to load the latest snapshot (it cannot), so changes still return.
- helpers (the SDN controller, BIRD, an external DNS server): SIGKILL and the supervisor's
  restart, ``Supervisor.hold``/``release``, or SIGSTOP/SIGCONT of the helper's process.
- kube-proxy (a thread of the manager on kernel data planes): ``Proxier.hold``/``release``/
  ``restart``.
- A node whose BIRD is stopped is "gone" for the other nodes' route confirmation
  (``Routing.gone``), as a stopped node is.

Every stop is undone by ``down`` and ``cleanup``: frozen processes are thawed before the pods
and helpers end (a stopped process would not act on SIGTERM), held helpers are ended with the rest.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Iterable

from emulator.cluster import addons, nodelifecycle
from emulator.errors import K8semuError, NotFoundError
from emulator.model import components, naming
from emulator.model.components import Fault
from emulator.runtime import kernel
from emulator.runtime.proc import ip_batch, run

# the pods each pod-run component is: (namespace, labels)
POD_COMPONENTS = {"coredns": ("kube-system", addons.DNS_LABELS),
                  "ingress-nginx": ("ingress-nginx", addons.INGRESS_LABELS)}


def _signal(pids: Iterable[int], sig: int) -> list[int]:
    """Send ``sig`` to each pid that still exists; those it reached."""
    done = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            done.append(pid)
        except ProcessLookupError:
            pass
    return done


class ComponentFaults:
    """The component faults in force (``held``: what a stop keeps down, by ``Fault.key``) and the
    pods they froze (``frozen_pods``: pod key -> uid)."""

    def _components_init(self) -> None:
        """Called by ``Manager.__init__``."""
        self.held: dict[str, Fault] = {}
        self.frozen_pods: dict[str, tuple[str, str]] = {}  # pod key -> (uid, node)
        self.fault_lock = threading.Lock()
        self.node_links: dict[str, list[str]] = {}  # a stopped node -> what its eth0 held (``ip -batch`` lines)

    def component_fault(self, action: str, component: str, node: str = "") -> str:
        """Do ``action`` to ``component`` (on ``node``); the line ``k8semu fault`` prints.

        Raises:
            K8semuError: a request that names no component; NotFoundError: a component this data
            plane has not, no such node or external host, no running pod of the component.
        """
        try:
            fault = components.parse(action, component, node)
        except ValueError as exc:
            raise K8semuError(str(exc)) from None
        why = components.applies(fault, self.config.cni, self.config.kube_proxy)
        if why:
            raise NotFoundError(why)
        if fault.node and fault.node not in {n.name for n in self.config.nodes}:
            raise NotFoundError(f'nodes "{fault.node}" not found')
        if fault.host and not any(h.name == fault.host and h.dns_server for h in self.config.external_hosts):
            raise NotFoundError(f"no external host {fault.host!r} runs a DNS server in cluster {self.config.name}")
        with self.fault_lock:
            # the controller may have been stopped by the older controller/stop request too
            stopped = fault.key in self.held or (fault.component == "controller" and self.supervisor.helpers["controller"].held)
            if fault.action == "stop" and stopped:
                return f"{fault.target} already stopped"
            if fault.action == "start" and not stopped:
                return f"{fault.target} is not stopped"
            do = {"coredns": self._pod_component, "ingress-nginx": self._pod_component, "controller": self._controller,
                  "kube-proxy": self._kube_proxy, "bird": self._bird, "dns": self._external_dns_fault}[fault.component]
            line = do(fault)
            if fault.action == "stop":
                self.held[fault.key] = fault
            elif fault.action == "start":  # a stop stays in force until its start, whatever was killed meanwhile
                self.held.pop(fault.key, None)
        self.wake.set()
        return line

    def component_faults(self) -> list[dict]:
        """The stops in force: [{"component", "node", "stopped": what it means}]. Read without
        ``fault_lock`` (a copy of the dict's values, atomic under the GIL): ``status_report`` asks
        with the manager's lock held, while a fault request holds ``fault_lock`` and may wait for
        the manager's lock (or for every switch, starting the controller)."""
        return [{"component": f.component if not f.host else f"{f.component}/{f.host}", "node": f.node,
                 "target": f.target, "stopped": components.COMPONENTS[f.component].stop}
                for f in list(self.held.values())]

    # -- each kind ------------------------------------------------------------------------
    def _component_pods(self, fault: Fault) -> list:
        namespace, labels = POD_COMPONENTS[fault.component]
        with self.lock:
            pods = [rec for rec in self.state.pods() if rec.obj.meta.namespace == namespace and not rec.deleting
                    and all(rec.obj.meta.labels.get(k) == v for k, v in labels.items())
                    and (not fault.node or rec.status.node == fault.node)
                    and self.kubelet is not None and rec.obj.key in self.kubelet.boxes]
        if not pods and fault.action != "start":
            raise NotFoundError(f"no running {fault.component} pod" + (f" on {fault.node}" if fault.node else ""))
        return pods

    def _pod_component(self, fault: Fault) -> str:
        cgroups = self.kubelet.runtime.cgroups if self.kubelet else None
        if fault.action == "start":
            thawed = []
            namespace, _ = POD_COMPONENTS[fault.component]
            for key, (uid, node) in list(self.frozen_pods.items()):
                if key.startswith(f"{namespace}/") and (not fault.node or node == fault.node):
                    thawed += _signal(sorted(cgroups.processes(uid)), signal.SIGCONT)
                    del self.frozen_pods[key]
            return f"{fault.target} started: {len(thawed)} processes thawed"
        pods = self._component_pods(fault)
        names = ", ".join(rec.obj.meta.name for rec in pods)
        if fault.action == "kill":
            with self.lock:
                pids = [pid for rec in pods for pid, _ in self.kubelet.boxes[rec.obj.key].containers.values() if pid]
            for rec in pods:  # a killed container comes back thawed
                self.frozen_pods.pop(rec.obj.key, None)
            killed = _signal(pids, signal.SIGKILL)
            return f"{fault.target} killed: pids {', '.join(map(str, killed)) or 'none'} ({names}); the kubelet restarts them"
        frozen = []
        for rec in pods:
            self.frozen_pods[rec.obj.key] = (rec.uid, rec.status.node)
            frozen += _signal(sorted(cgroups.processes(rec.uid)), signal.SIGSTOP)
        return (f"{fault.target} stopped: {len(frozen)} processes of {names} frozen; their probes fail from now on "
                "(readiness: out of the Service's endpoints; liveness: the kubelet restarts the container)")

    def _controller(self, fault: Fault) -> str:
        if fault.action == "stop":
            return self.controller_stop()
        if fault.action == "start":
            return self.controller_start()
        return self._kill_helper("controller") + "; the supervisor starts it again and it resyncs every switch"

    def _kill_helper(self, name: str) -> str:
        helper = self.supervisor.helpers[name]
        pid = helper.proc.pid if helper.proc and not helper.held else None
        if pid is None or not _signal([pid], signal.SIGKILL):  # SIGKILL ends a frozen process too
            return f"{name} had no process to kill" + (" (it is stopped)" if helper.held else "")
        return f"{name} killed (pid {pid})"

    def _bird(self, fault: Fault) -> str:
        routing = self.proxier.routing
        nodes = [fault.node] if fault.node else [n.name for n in self.config.nodes]
        lines = []
        for node in nodes:
            name = routing.helper(node)
            if fault.action == "kill":
                lines.append(self._kill_helper(name))
            elif fault.action == "stop":
                routing.set_gone(node, "bird", True)
                with self.lock:  # the loop's supervisor pass runs under it (as controller_stop holds it)
                    lines.append(self.supervisor.hold(name))
            else:
                with self.lock:
                    self.supervisor.release(name)
                routing.set_gone(node, "bird", False)
                lines.append(f"{name} started")
        tail = {"kill": "; the supervisor starts it again (its peers withdraw its routes meanwhile)",
                "stop": "; its peers withdraw its routes", "start": "; its sessions and routes come back"}
        return "; ".join(lines) + tail[fault.action]

    def _kube_proxy(self, fault: Fault) -> str:
        nodes = [fault.node] if fault.node else [n.name for n in self.config.nodes]
        for node in nodes:
            {"kill": self.proxier.restart, "stop": self.proxier.hold, "start": self.proxier.release}[fault.action](node)
        where = f"on {', '.join(nodes)}"
        return {"kill": f"kube-proxy restarted {where}: its next sync is a full one",
                "stop": f"kube-proxy stopped {where}: its rules stay as they are until it starts",
                "start": f"kube-proxy started {where}: it syncs what changed meanwhile"}[fault.action]

    def _external_dns_fault(self, fault: Fault) -> str:
        name = f"dns {fault.host}"
        helper = self.supervisor.helpers[name]
        if fault.action == "kill":
            return self._kill_helper(name) + "; the supervisor starts it again"
        pid = helper.proc.pid if helper.proc else None
        sig = signal.SIGSTOP if fault.action == "stop" else signal.SIGCONT
        if pid is None or not _signal([pid], sig):
            raise NotFoundError(f"the DNS server of {fault.host} is not running")
        return (f"{fault.target} stopped: pid {pid} frozen; queries to {fault.host} get no answer" if fault.action == "stop"
                else f"{fault.target} started: pid {pid} thawed")

    # -- a node lost (k8semu node stop|start) ---------------------------------------------
    def signal_node_pods(self, name: str, sig: int) -> set[int]:
        """Send ``sig`` to every process of the pods on node ``name`` (their cgroups'); the pids."""
        pids: set[int] = set()
        for rec in self.state.pods():
            if rec.status.node == name and self.kubelet and rec.obj.key in self.kubelet.boxes:
                pids |= self.kubelet.runtime.cgroups.processes(rec.uid)
        _signal(sorted(pids), sig)
        return pids

    def node_power(self, name: str, stop: bool) -> str:
        """``k8semu node stop|start``: the node's eth0 down and its kubelet gone, its pods'
        processes frozen (SIGSTOP, every process of their cgroups), as a node that lost power
        or its network looks from the control plane (on calico its peers keep its routes until
        BGP's hold timer expires, and their confirmation lets them be: ``Routing.set_gone``);
        the node lifecycle controller does the rest (``cluster.nodelifecycle``). Start undoes it: the processes go on where they were, the
        kubelet posts again and ends the pods deleted meanwhile; the routes and permanent
        neighbours eth0 lost are put back (a routing daemon's own excepted: BGP brings those).

        Raises:
            NotFoundError: no such node.
        """
        with self._changing():
            if name not in {n.name for n in self.config.nodes}:
                raise NotFoundError(f'nodes "{name}" not found')
            if (name in self.state.stopped) == stop:
                return f"node/{name} already {'stopped' if stop else 'running'}"
            if self.proxier is not None and self.proxier.routing is not None:  # calico: its peers' routes may go
                self.proxier.routing.set_gone(name, "node", stop)
            netns = naming.node_netns(self.records.scope, name)
            if stop:  # eth0 down deletes its routes and neighbours; up brings back only its subnet's route
                self.node_links[name] = kernel.link_state(netns, "eth0")
            run(["ip", "-n", netns, "link", "set", "eth0", "down" if stop else "up"])
            if not stop:
                ip_batch(self.node_links.pop(name, []), netns=netns, check=False)
            pids = self.signal_node_pods(name, signal.SIGSTOP if stop else signal.SIGCONT)
            if stop:
                self.state.stopped[name] = time.time()
                return (f"node/{name} stopped: eth0 down, kubelet gone, {len(pids)} processes frozen; Ready=Unknown "
                        f"after {nodelifecycle.grace(self.state):g}s (node-monitor-grace-period x spec.timeScale)")
            del self.state.stopped[name]
            return f"node/{name} started: eth0 up, {len(pids)} processes thawed, the kubelet posts again"

    def thaw_components(self) -> None:
        """Before teardown: every frozen process goes on (a stopped process would not act on the
        SIGTERM that ends it), so pods and helpers end as fast as the others."""
        cgroups = self.kubelet.runtime.cgroups if self.kubelet else None
        for uid, _ in list(self.frozen_pods.values()):
            if cgroups is not None:
                _signal(sorted(cgroups.processes(uid)), signal.SIGCONT)
        for fault in self.held.values():
            helper = self.supervisor.helpers.get(f"dns {fault.host}") if fault.host else None
            if helper is not None and helper.proc is not None:
                _signal([helper.proc.pid], signal.SIGCONT)
