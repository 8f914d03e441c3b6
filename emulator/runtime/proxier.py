"""kube-proxy, and a NetworkPolicy agent, on every node of a kernel data plane (``cni: flannel``):
the rules of
``emulator.kubeproxy`` (iptables or nftables mode) loaded into each node's namespace from the
same network view the OpenFlow controller reads.

As kube-proxy does: the first sync is a full one (iptables: ``iptables-restore --noflush`` of its
chains, then its jumps from the built-in chains inserted once; nftables: the ``ip kube-proxy``
table made), later ones partial (only the changed Services' chains, or elements); a failed
partial sync is followed by a full one (the table deleted first in nftables mode). Syncs are at
least ``minSyncPeriod`` apart (kube-proxy's default 1 s; its BoundedFrequencyRunner runs at once
when the last run is that old, else when it becomes so) and coalesce: only the latest view is
loaded.

One thread for every node: the rules of one view are loaded into the nodes side by side, and
each node's generation (the view it holds) is what ``Manager.synced`` and the waits read, as the
switches' confirmed generations are on the OpenFlow data plane. The same pass loads the node's
NetworkPolicy sets and chains (``netpolicy.iptables``) when they changed, so a node's generation
covers its policies too. Beside the OpenFlow controller (``kubeProxy.mode`` on ``cni: openflow``)
only kube-proxy's rules: NetworkPolicy stays in the switches.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from emulator.errors import RenderError, RuntimeFailure
from emulator.kubeproxy import nftables
from emulator.kubeproxy import node as kube_proxy
from emulator.netpolicy import felix
from emulator.netpolicy import iptables as netpolicy
from emulator.netpolicy.iptables import NodePolicy
from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.model.netview import NetworkView, ServicePortView
from emulator.runtime.caliconet import Routing
from emulator.runtime.flannelnet import in_node
from emulator.runtime.kubeproxyhttp import KubeProxyServers
from emulator.runtime.proc import run

WORKERS = 4
RESTORE = ("iptables-restore", "-w", "5", "--noflush")
BURST_SYNCS = 2  # kube-proxy's burstSyncs


@dataclass
class NodeRules:
    """What one node's kube-proxy last loaded."""
    services: list[ServicePortView] | None = None  # None: nothing yet (the next sync is a full one)
    generation: int = -1
    error: str = ""
    syncs: int = 0
    full_syncs: int = 0
    last_duration: float = 0.0
    policy: NodePolicy | None = None  # the NetworkPolicy state last loaded
    jumped: bool = False  # kube-proxy's jumps from the built-in chains are in
    queued_at: float = 0.0  # wall time the oldest view it has not loaded was handed over (0: none)
    updated_at: float = 0.0  # wall time of its last successful sync


@dataclass
class SyncBucket:
    """kube-proxy's BoundedFrequencyRunner limit: a token bucket of ``burst`` syncs (kube-proxy's
    burstSyncs, 2) refilled at one per ``period`` (minSyncPeriod); no limit for a 0 period."""
    period: float
    burst: int = BURST_SYNCS
    tokens: float = float(BURST_SYNCS)
    at: float = field(default_factory=lambda: time.monotonic())

    def _refill(self) -> None:
        now = time.monotonic()
        if self.period > 0:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at) / self.period)
        self.at = now

    def wait(self) -> float:
        """Seconds until a sync may run."""
        self._refill()
        return 0.0 if self.period <= 0 or self.tokens >= 1 else (1 - self.tokens) * self.period

    def take(self) -> None:
        self._refill()
        if self.period > 0:
            self.tokens = max(0.0, self.tokens - 1)


@dataclass
class Proxier:
    config: ClusterConfig
    scope: naming.Scope
    on_synced: Callable[[], None] = lambda: None  # the manager's wake-up
    nodes: dict[str, NodeRules] = field(default_factory=dict)
    routing: Routing | None = None  # cni: calico: BIRD's (and Felix's) routes, which a node's generation also covers

    def __post_init__(self) -> None:
        self.nodes = {n.name: NodeRules() for n in self.config.nodes}
        self.lock = threading.Lock()
        self.pending: NetworkView | None = None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pending_at = 0.0  # wall time the pending view (or the one it replaced) was handed over
        self.latest: NetworkView | None = None  # the last view handed over (a restarted kube-proxy syncs it)
        self.held: set[str] = set()  # nodes whose kube-proxy is stopped (``k8semu fault stop kube-proxy``)
        self.fresh = False  # a kube-proxy (re)started: the next sync runs at once, as a new process's first
        self.bucket = SyncBucket(self.config.min_sync_period)
        self.thread = threading.Thread(target=self._loop, name="kube-proxy", daemon=True)
        self.http = KubeProxyServers(self.scope, self.config.kube_proxy)

    def start(self) -> None:
        """The sync thread, and each node's health and metrics servers (its namespace exists)."""
        for node in self.nodes:
            self.http.open(node, lambda node=node: self._health(node))
        for node, why in self.http.failed.items():
            self.nodes[node].error = why  # reported as the sync errors are (FailedToSyncProxyRules)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        if self.routing is not None:
            self.routing.stop()
        self.http.close()

    def _health(self, node: str) -> tuple[float, float]:
        with self.lock:
            rules = self.nodes[node]
            return rules.queued_at, rules.updated_at

    def update(self, view: NetworkView) -> None:
        """A new view to load (the latest replaces one not loaded yet)."""
        now = time.time()
        with self.lock:
            if self.pending is None:
                self.pending_at = now
            self.pending = self.latest = view
            for rules in self.nodes.values():
                if not rules.queued_at and rules.generation < view.generation:
                    rules.queued_at = now
        self.wake.set()

    def hold(self, node: str) -> None:
        """The node's kube-proxy stops: no sync loads its rules until ``release`` (its policies
        and routes are still loaded: they are other agents' work)."""
        with self.lock:
            self.held.add(node)

    def release(self, node: str) -> None:
        """The node's kube-proxy runs again and syncs what changed meanwhile, at once (a new
        kube-proxy's first sync is not held back by minSyncPeriod)."""
        with self.lock:
            self.held.discard(node)
        self._again()

    def restart(self, node: str) -> None:
        """The node's kube-proxy restarts: as kube-proxy after a restart, its next sync is a full one."""
        with self.lock:
            self.nodes[node].services = None
        self._again()

    def _again(self) -> None:
        with self.lock:
            view = self.latest
            self.fresh = True
        if view is not None:
            self.update(view)

    def generations(self) -> dict[str, int]:
        """Each node's generation: the view its rules hold (calico: and its routes, confirmed)."""
        with self.lock:
            out = {name: rules.generation for name, rules in self.nodes.items()}
        if self.routing is not None:
            out = {name: min(g, self.routing.confirmed(name)) for name, g in out.items()}
        return out

    def _loop(self) -> None:
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="kube-proxy-node") as pool:
            while not self.stopping.is_set():
                self.wake.wait()
                self.wake.clear()
                with self.lock:
                    fresh, self.fresh = self.fresh, False
                wait = 0.0 if fresh else self.bucket.wait()
                if wait > 0 and self.stopping.wait(wait):
                    return
                with self.lock:
                    view, self.pending = self.pending, None
                if view is None or self.stopping.is_set():
                    continue
                self.bucket.take()
                list(pool.map(lambda node: self._sync(node, view), [n.name for n in self.config.nodes]))
                self.on_synced()

    def _sync(self, node: str, view: NetworkView) -> None:
        rules = self.nodes[node]
        new = list(view.services)
        started = time.monotonic()
        error = ""
        old = rules.services
        full = old is None
        with self.lock:
            held = node in self.held
        try:
            if not held:
                try:
                    self._load(node, rules.services, new)
                except RuntimeFailure:
                    if rules.services is None:
                        raise
                    full = True
                    self._load(node, None, new)  # the partial sync failed: a full one, as kube-proxy falls back
            if self.config.kernel_dataplane:  # beside the controller, policy is in the switches
                self._policies(node, view, rules)
            if self.routing is not None:
                self.routing.load(node, view)
            for argv in stale_udp(old or [], new) if not held else ():
                run(in_node(naming.node_netns(self.scope, node), "conntrack", *argv), check=False)
        except (RuntimeFailure, RenderError, ValueError) as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - the thread must outlive any one node's failure
            error = f"{type(exc).__name__}: {exc}"
        with self.lock:
            rules.error = error
            if not error:
                rules.generation = view.generation  # what k8semu must load there is loaded, fault included
            if not error and not held:  # a stopped kube-proxy's health stays as it was: its queue ages
                rules.services = new
                rules.updated_at = time.time()
                # still behind if a newer view waits: it has waited since it was handed over
                rules.queued_at = self.pending_at if self.pending is not None else 0.0
            rules.syncs += 0 if held else 1
            rules.last_duration = time.monotonic() - started
        if not error and not held:
            self.http.synced(node, rules.last_duration, full)

    def _load(self, node: str, old: list[ServicePortView] | None, new: list[ServicePortView]) -> None:
        netns = naming.node_netns(self.scope, node)
        rules = self.nodes[node]
        nft = self.config.kube_proxy == "nftables"
        if old is None and nft:
            run(in_node(netns, "nft", "delete", "table", *nftables.TABLE.split()), check=False)
        text = kube_proxy.full_sync(self.config, node, new) if old is None else \
            kube_proxy.partial_sync(self.config, node, old, new)
        if text:
            run(in_node(netns, *(["nft", "-f", "-"] if nft else RESTORE)), input=text)
        if not nft and not rules.jumped:  # the node's namespace is ours and new: none are there yet
            run(in_node(netns, *RESTORE), input=kube_proxy.jumps_restore())
            rules.jumped = True
        if old is None:
            rules.full_syncs += 1

    def _policies(self, node: str, view: NetworkView, rules: NodeRules) -> None:
        """The node's NetworkPolicy sets and chains (``netpolicy.iptables``; on calico Felix's,
        ``netpolicy.felix``), loaded when they changed: sets first (the chains name them), then
        the chains, then the jumps from FORWARD and INPUT (once, first: before kube-proxy's and
        flanneld's ACCEPTs), then the chains and sets no longer named deleted."""
        me = self.config.node(node)
        if self.config.cni == "calico":  # cali veths have no address: the node's packets leave from its own
            policy = felix.render(view.policies, node, me.ip, [p for p in view.pods if p.node == node])
            jumps = felix.JUMPS
        else:  # cni0's address is the node's towards its pods
            local = frozenset(p.ip for p in view.pods if p.node == node)
            policy = netpolicy.render(view.policies, node, me.gateway_ip, local)
            jumps = netpolicy.JUMPS
        if policy == rules.policy:
            return
        netns = naming.node_netns(self.scope, node)
        run(in_node(netns, "ipset", "restore"), input=policy.ipsets)
        run(in_node(netns, "iptables-restore", "-w", "5", "--noflush"), input=policy.rules)
        if rules.policy is None:  # first in FORWARD and INPUT, once: before kube-proxy's and flanneld's ACCEPTs
            for table, chain, words in jumps:
                run(in_node(netns, "iptables", "-w", "5", "-t", table, "-I", chain, "1", *words))
        stale = sorted((rules.policy.chains if rules.policy else frozenset()) - policy.chains)
        if stale:  # a gone pod's chains (nothing jumps to them any more): flushed by declaring, then deleted
            run(in_node(netns, "iptables-restore", "-w", "5", "--noflush"),
                input="*filter\n" + "".join(f":{c} - [0:0]\n" for c in stale) + "".join(f"-X {c}\n" for c in stale)
                + "COMMIT\n")
        gone = sorted((rules.policy.sets if rules.policy else frozenset()) - policy.sets)
        if gone:
            run(in_node(netns, "ipset", "restore"), input="".join(f"destroy {name}\n" for name in gone))
        rules.policy = policy


def stale_udp(old: list[ServicePortView], new: list[ServicePortView]) -> list[list[str]]:
    """``conntrack -D`` arguments for the UDP entries a sync made stale, as kube-proxy deletes
    them after loading its rules (conntrack.CleanStaleEntries before 1.28's filter): for an
    endpoint a UDP Service port lost, the entries from its cluster IP, external and load-balancer
    IPs and NodePort to that endpoint (a UDP "connection" would otherwise keep going to it); for
    a port that had no endpoints and now has, the entries to its addresses (the REJECTs')."""
    before = {(s.namespace, s.name, s.port_name, s.protocol): s for s in old if s.protocol == "UDP" and s.cluster_ip}
    out: list[list[str]] = []
    for svc in new:
        was = before.get((svc.namespace, svc.name, svc.port_name, svc.protocol))
        if was is None:
            continue
        ips = [a for a in (was.cluster_ip, was.lb_ip, *was.external_ips) if a]
        gone = sorted({e.ip for e in was.endpoints} - {e.ip for e in svc.endpoints})
        for ep in gone:
            out += [["-D", "-p", "udp", "--orig-dst", ip, "--dst-nat", ep] for ip in ips]
            if was.node_port:
                out.append(["-D", "-p", "udp", "--orig-port-dst", str(was.node_port), "--dst-nat", ep])
        if not was.endpoints and svc.endpoints:
            out += [["-D", "-p", "udp", "--orig-dst", ip] for ip in ips]
    for key, was in before.items():  # a port gone altogether: every entry it made
        if not any((s.namespace, s.name, s.port_name, s.protocol) == key for s in new):
            out += [["-D", "-p", "udp", "--orig-dst", ip, "--dst-nat", e.ip]
                    for ip in (was.cluster_ip, was.lb_ip, *was.external_ips) if ip for e in was.endpoints]
    return out
