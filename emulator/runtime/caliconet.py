"""The nodes of a ``cni: calico`` cluster (issue #14): Mininet hosts on the underlay bridge, as
for flannel, with what calico-node does on each: ip_forward on, Felix's outgoing NAT, the
``calico`` and ``calico-ipam`` CNI plugins (``emulator.calico.cniplugin``, found through
CNI_PATH in the cluster's own ``opt/cni/bin``), /etc/cni/net.d/10-calico.conflist, and BIRD 2
(Debian's bird2) in the node's namespace with the configuration confd would write
(``emulator.calico.bird``), at the node's /etc/bird/bird.conf and its control socket at
/run/bird/bird.ctl (the node's folders under the run directory, which ``k8semu exec NODE --``
binds there: ``birdc show protocols`` works as on a node).

``Routing`` keeps each BIRD's configuration in step with the IPAM's blocks (a block claimed or
released: the file rewritten and ``birdc configure``) and says when a node's BGP sessions are all
established (calico-node's readiness check) and its kernel holds what BIRD must have put there
(every other node's blocks via that node, borrowed /32s, its own blocks' blackholes): that is
part of the node's confirmed generation, as the switches' are on the OpenFlow data plane. BIRD
runs under the manager's supervisor (a killed BIRD comes back; its peers withdraw its routes
meanwhile). With VXLAN pools BIRD puts none of their routes in the kernel; ``Routing`` does what
Felix's VXLAN manager does instead: vxlan.calico, its neighbours and forwarding entries, and the
pools' routes (``proto 80``), from each view.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from emulator.calico import bird, cniplugin
from emulator.calico import config as calico
from emulator.errors import RuntimeFailure
from emulator.model import naming
from emulator.model.calico import CalicoConfig
from emulator.model.calicobgp import BGPView
from emulator.model.cluster import ClusterConfig
from emulator.model.netview import NetworkView
from emulator.model.node import Node
from emulator.runtime import birdctl, cni
from emulator.runtime.flannelnet import PLUGIN_DIR, build_underlay, cni_path, in_node, node_root
from emulator.runtime.proc import ip_batch, run

SYSCTLS = ("net.ipv4.ip_forward=1",)
BIRD_CONF = "etc/bird/bird.conf"
BIRD_RUN = "run/bird"  # the control socket's folder (bird.ctl: birdc's default, /run/bird/bird.ctl)
PLUGINS = ("calico", "calico-ipam")
WORKERS = 4  # nodes whose routes are read at once
RETRY_MIN, RETRY_MAX = 0.01, 0.25  # seconds between checks of a node that is behind
CONVERGE_TIMEOUT = 20.0  # how long BIRD may take to listen on its socket after it starts


def conflist_path(run_dir: Path, node: str) -> Path:
    return node_root(run_dir, node) / "etc/cni/net.d" / calico.CONFLIST


def check_kernel(cfg: ClusterConfig) -> None:
    """Raises: RuntimeFailure when a pool's encapsulation needs what this k8semu or kernel lacks."""
    for pool in cfg.calico.pools if cfg.calico else ():
        if pool.encapsulation.startswith("IPIP"):
            have = os.path.isdir("/sys/module/ipip") or _module_available("ipip")
            raise RuntimeFailure(f"IP pool {pool.name}: encapsulation {pool.encapsulation} needs the ipip kernel module"
                                 + (", which this kernel lacks; use None or VXLANCrossSubnet" if not have else
                                    "; k8semu does not emulate IPIP yet: use None or VXLANCrossSubnet"))


def _module_available(name: str) -> bool:
    done = subprocess.run(["modprobe", "-n", "-q", name], capture_output=True)
    return done.returncode == 0


def install_plugins(run_dir: Path) -> None:
    """The ``calico`` and ``calico-ipam`` launchers in the cluster's own plugin folder."""
    folder = run_dir / PLUGIN_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for kind in PLUGINS:
        path = folder / kind
        path.write_text(cniplugin.launcher(kind))
        path.chmod(0o755)


def write_files(cfg: ClusterConfig, run_dir: Path, node: Node) -> None:
    root = node_root(run_dir, node.name)
    for folder in (root / "etc/cni/net.d", root / "etc/bird", root / BIRD_RUN, root / "var/lib/cni"):
        folder.mkdir(parents=True, exist_ok=True)
    conflist_path(run_dir, node.name).write_text(calico.conflist(cfg, node))


def configure_node(cfg: ClusterConfig, scope: naming.Scope, node: Node) -> None:
    """The node's address and default route, forwarding, and Felix's outgoing NAT."""
    netns = naming.node_netns(scope, node.name)
    run(in_node(netns, "sysctl", "-q", "-w", *SYSCTLS))
    router = cfg.underlay.router_ip(node.subnet)
    ip_batch(["link set lo up", "link set eth0 up", f"addr add {node.ip}/{node.prefixlen} dev eth0",
              f"route add default via {router} dev eth0"], netns=netns, force=False)
    sets, rules = calico.nat_outgoing(cfg.calico)
    run(in_node(netns, "ipset", "restore"), input=sets)
    run(in_node(netns, "iptables-restore", "-w", "5", "--noflush"), input=rules)


def build_nodes(fabric, host_class) -> None:
    """The nodes and the underlay, then each node's Calico plumbing and files."""
    check_kernel(fabric.config)
    build_underlay(fabric, host_class)
    cfg, scope, run_dir = fabric.config, fabric.scope, fabric.records.path.parent
    install_plugins(run_dir)
    for node in cfg.nodes:
        configure_node(cfg, scope, node)
        write_files(cfg, run_dir, node)
    pin_neighbours(cfg, scope)
    fabric._external_hosts(host_class)


def pin_neighbours(cfg: ClusterConfig, scope: naming.Scope) -> None:
    """Each node's underlay neighbours (the other nodes of its subnet; those of other subnets are
    behind the router) as permanent ARP entries. The kernel's
    ARP table is one for every namespace on this machine, and its default limit (gc_thresh3,
    1,024 entries that are not permanent) is below what a 50-node BGP full mesh needs (2,450:
    every node talks to every other at once); past it the kernel drops packets for want of a
    neighbour ("neighbor table overflow") and sessions take minutes to open. Permanent entries
    do not count against the limit, and the machine's own setting is left as it is."""
    macs = {}
    for node in cfg.nodes:
        done = run(in_node(naming.node_netns(scope, node.name), "ip", "-j", "link", "show", "eth0"))
        macs[node.name] = json.loads(done.stdout)[0]["address"]
    for node in cfg.nodes:
        ip_batch([f"neigh replace {peer.ip} lladdr {macs[peer.name]} dev eth0 nud permanent"
                  for peer in cfg.nodes if peer.name != node.name and peer.same_subnet(node)],
                 netns=naming.node_netns(scope, node.name))


def plugins(cfg: ClusterConfig, run_dir: Path) -> cni.Plugins:
    """The runtime's CNI: the nodes' conflists (read back from their files), CNI_PATH with the
    cluster's own plugins first, libcni's cache in each node's /var/lib/cni/results."""
    conflists = {}
    for node in cfg.nodes:
        path = conflist_path(run_dir, node.name)
        if path.exists():
            conflists[node.name] = json.loads(path.read_text())
    return cni.Plugins(conflists, cni_path(run_dir), results={n.name: node_root(run_dir, n.name) / cni.RESULTS
                                                              for n in cfg.nodes})


class Routing:
    """BIRD on every node, its configuration following the blocks, its routes confirmed.

    ``load`` (the proxier's thread, each view) rewrites a node's configuration and reconfigures
    BIRD when its blocks changed, and records the routes that view needs; a thread of its own
    compares each node's kernel and BGP sessions with them (10 ms after a miss, doubling to 250 ms
    while the node stays behind) and raises the node's confirmed generation when they match, so
    a slow BGP update delays only that node's confirmation, never kube-proxy's rules on any node.
    Nodes are read four at a time.
    """

    def __init__(self, cfg: ClusterConfig, scope: naming.Scope, run_dir: Path, supervisor,
                 on_confirmed: Callable[[], None] = lambda: None) -> None:
        self.cfg, self.scope, self.run_dir, self.supervisor = cfg, scope, run_dir, supervisor
        self.on_confirmed = on_confirmed
        self.loaded: dict[str, str] = {}  # node -> the configuration its BIRD was last given
        self.felix: dict[str, calico.FelixState] = {}  # node -> what Felix last programmed (VXLAN pools)
        # the pools as the last view has them (IPPools written since up): BIRD's filters, the
        # routes read back, Felix's NAT sets (node -> the ipset input it was last given)
        self.pools = cfg.calico.pools
        self.bgp = BGPView()  # the sessions as the last view has them
        self.nat_sets: dict[str, str] = {n.name: calico.nat_sets_update(cfg.calico) for n in cfg.nodes}
        self.lock = threading.Lock()
        # node -> (generation, routes it needs, the view they come from: what still arrives with nodes gone)
        self.wanted: dict[str, tuple[int, dict[str, str], NetworkView]] = {}
        self.confirmed_at: dict[str, int] = {n.name: -1 for n in cfg.nodes}
        self.behind: dict[str, str] = {}  # node -> what its kernel lacks, once it has been behind a while
        # node -> why it is gone ("node": k8semu node stop; "bird": its BIRD stopped); see ``set_gone``
        self.gone: dict[str, set[str]] = {}
        self.by_ip = {n.ip: n.name for n in cfg.nodes}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="bird-routes", daemon=True)

    def start(self, bgp: BGPView | None = None) -> None:
        """BIRD on every node, started with the sessions of ``bgp`` (the first view's)."""
        self.bgp = bgp or self.bgp
        for node in self.cfg.nodes:
            self._write(node, [], self.cfg.calico, self.bgp)
            self.supervisor.add(self.helper(node.name), lambda node=node: self._launch(node))
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    @staticmethod
    def helper(node: str) -> str:
        return f"bird {node}"

    def set_gone(self, node: str, why: str, gone: bool) -> None:
        """A node lost (``why`` "node") or whose BIRD is stopped (``why`` "bird"), or back. A gone
        node's own routes are not checked (nothing can reach it, or nothing programs them), and
        on the others a route through it may be there or not (BGP keeps a lost peer's routes
        until its hold timer expires; a stopped BIRD's peers withdraw them at once), as may a
        session to it: their confirmation waits for everything else, so changes still return."""
        with self.lock:
            reasons = self.gone.setdefault(node, set())
            (reasons.add if gone else reasons.discard)(why)
            if not reasons:
                del self.gone[node]
        self.wake.set()

    def confirmed(self, node: str) -> int:
        with self.lock:
            return self.confirmed_at.get(node, -1)

    def _write(self, node: Node, blocks: list[str], calico_cfg: CalicoConfig, bgp: BGPView) -> bool:
        """The node's bird.conf for ``blocks``, the pools of ``calico_cfg`` and the sessions of
        ``bgp``, written when it changed; whether it did."""
        text = "log stderr all;  # k8semu: BIRD logs to its node's bird.log, never to this machine's syslog\n" + \
            bird.config(calico_cfg, bgp, node, blocks)
        if self.loaded.get(node.name) == text:
            return False
        (node_root(self.run_dir, node.name) / BIRD_CONF).write_text(text)
        self.loaded[node.name] = text
        return True

    def _launch(self, node: Node) -> subprocess.Popen:
        root = node_root(self.run_dir, node.name)
        netns = naming.node_netns(self.scope, node.name)
        # the socket's path is relative to BIRD's folder: a unix socket's path has 107 bytes at most
        with open(root / "bird.log", "ab") as log:
            return subprocess.Popen(in_node(netns, "bird", "-f", "-c", str(root / BIRD_CONF), "-s", "bird.ctl"),
                                    cwd=root / BIRD_RUN, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def _configure(self, node: str) -> None:
        """``birdc configure`` on the node's control socket, waiting for BIRD to listen (a BIRD
        that is not up yet reads the new file when it starts, and is asked all the same).

        Raises:
            RuntimeFailure: BIRD refused the file, or did not answer within ``CONVERGE_TIMEOUT``.
        """
        folder = str(node_root(self.run_dir, node) / BIRD_RUN)
        deadline = time.monotonic() + CONVERGE_TIMEOUT
        while True:
            try:
                birdctl.command(folder, "configure")
                return
            except birdctl.BirdError as exc:
                raise RuntimeFailure(f"BIRD on {node} refused its configuration: {exc}") from None
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeFailure(f"BIRD on {node} did not answer on its control socket: {exc}") from None
            time.sleep(0.02)

    def load(self, node: str, view: NetworkView) -> None:
        """BIRD given the node's blocks (reconfigured when they changed); the view's routes become
        what the node's confirmation waits for.

        Raises:
            RuntimeFailure: BIRD refused the configuration, or did not answer within ``CONVERGE_TIMEOUT``.
        """
        with self.lock:
            stopped = "bird" in self.gone.get(node, ())
        calico_cfg = calico.effective(self.cfg, view)
        self.pools = calico_cfg.pools
        if view.bgp is not None:
            self.bgp = view.bgp
        sets = calico.nat_sets_update(calico_cfg)
        if self.nat_sets.get(node) != sets:  # an IPPool added, deleted, or its natOutgoing changed
            run(in_node(naming.node_netns(self.scope, node), "ipset", "restore"), input=sets)
            self.nat_sets[node] = sets
        written = self._write(self.cfg.node(node), calico.blocks_of(view, node), calico_cfg, self.bgp)
        if written and not stopped:  # a stopped BIRD reads it when it starts
            try:
                self._configure(node)
            except RuntimeFailure:
                self.loaded.pop(node, None)  # the next view writes it and asks again
                raise
        if self.cfg.calico.vxlan:
            self._felix(node, view)
        with self.lock:
            self.wanted[node] = (view.generation, calico.expected_routes(self.cfg, view, node), view)
        self.wake.set()

    def _felix(self, node: str, view: NetworkView) -> None:
        """Felix's VXLAN manager on ``node``: vxlan.calico once its tunnel address is known, then
        the neighbours, forwarding entries and routes that changed (``calico.felix_state``)."""
        netns = naming.node_netns(self.scope, node)
        tunnel = dict(view.tunnels).get(node)
        if tunnel is None:
            return
        if node not in self.felix:
            ip_batch(calico.vxlan_device(self.cfg, self.cfg.node(node), tunnel), netns=netns, force=False)
        new = calico.felix_state(self.cfg, view, node)
        lines, fdb = calico.felix_changes(self.felix.get(node), new)
        ip_batch(lines, netns=netns)
        if fdb:
            run(["bridge", "-n", netns, "-batch", "-"], input="\n".join(fdb) + "\n")
        self.felix[node] = new

    def routes(self, node: str) -> dict[str, str]:
        """The node's BIRD routes inside the pools: destination -> next hop or "blackhole"."""
        netns = naming.node_netns(self.scope, node)
        done = run(in_node(netns, "ip", "-j", "-4", "route", "show", "proto", "bird"))
        pools = [p.network for p in self.pools]
        out = {}
        for r in json.loads(done.stdout or "[]"):
            dst = r.get("dst", "")
            net = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
            if any(net.subnet_of(p) for p in pools):
                out[str(net)] = "blackhole" if r.get("type") == "blackhole" else r.get("gateway", "")
        return out

    def _check(self, node: str, generation: int, expected: dict[str, str], view: NetworkView) -> bool:
        """Whether the node's kernel holds ``expected`` now (then its generation is confirmed);
        routes and sessions through gone nodes are let be (``set_gone``): a route that goes via
        one, or that arrives only through one (a reflector), may be there or not."""
        with self.lock:
            gone = frozenset(self.gone)
        if node in gone:
            return self._confirm(node, generation)
        try:
            got = self.routes(node)
        except (RuntimeFailure, ValueError) as exc:
            self.behind[node] = str(exc)
            return False

        required = calico.expected_routes(self.cfg, view, node, gone) if gone else expected

        def optional(dst: str) -> bool:
            return (dst in expected and dst not in required) or self.by_ip.get(expected.get(dst, "")) in gone \
                or self.by_ip.get(got.get(dst, "")) in gone
        missing = sorted(f"{d} via {h}" for d, h in required.items() if got.get(d) != h and not optional(d))
        stale = sorted(d for d in got if d not in expected and not optional(d))
        if missing or stale:
            self.behind[node] = f"missing {', '.join(missing) or 'nothing'}; stale {', '.join(stale) or 'nothing'}"
            return False
        down = self.sessions_down(node, gone)
        if down:
            self.behind[node] = f"BGP sessions not established: {', '.join(down)}"
            return False
        return self._confirm(node, generation)

    def _confirm(self, node: str, generation: int) -> bool:
        with self.lock:
            if self.wanted.get(node, (0,))[0] == generation:
                self.confirmed_at[node] = generation
        self.behind.pop(node, None)
        return True

    def sessions_down(self, node: str, gone: frozenset[str] = frozenset()) -> list[str]:
        """The node's BGP sessions that are not Established (calico-node's ``-bird-ready`` check:
        its readiness waits for every peer) among those that can come up (``BGPView.established``:
        a peering the other end does not return, or with the wrong AS, stays in Connect or Active
        on a real node too) but those to ``gone`` nodes, or why BIRD could not say."""
        try:
            sessions = birdctl.bgp_sessions(str(node_root(self.run_dir, node) / BIRD_RUN))
        except OSError as exc:
            return [f"BIRD's control socket: {exc}"]
        bgp = self.bgp
        awaited = {s.name for s in bgp.of(node) if (node, s.peer) in bgp.established and s.peer not in gone}
        return [name for name, state in sorted(sessions.items()) if "Established" not in state and name in awaited]

    def _watch(self) -> None:
        """Check the nodes that are behind: each again 10 ms after a miss, doubling to 250 ms
        while it stays behind (a session that takes seconds to open is not asked about a hundred
        times a second; at 50 nodes those questions took the CPU BIRD needed)."""
        retry: dict[str, tuple[int, float, float]] = {}  # node -> (generation, next check, its interval)
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="bird-routes") as pool:
            while not self.stopping.is_set():
                with self.lock:
                    pending = [(n, *w) for n, w in self.wanted.items() if w[0] > self.confirmed_at.get(n, -1)]
                if not pending:
                    retry.clear()
                    self.wake.wait()
                    self.wake.clear()
                    continue
                now = time.monotonic()
                # a node is due when its wait is over, or at once when a newer view is wanted of it
                due = [p for p in pending if retry.get(p[0], (-1, 0.0, 0.0))[0] != p[1] or retry[p[0]][1] <= now]
                results = list(pool.map(lambda p: self._check(*p), due))
                for (node, generation, *_), done in zip(due, results):
                    last = retry.get(node)
                    interval = min(RETRY_MAX, last[2] * 2) if last and last[0] == generation else RETRY_MIN
                    retry[node] = (generation, time.monotonic() + interval, interval)
                    if done:
                        retry.pop(node)
                if any(results):
                    self.on_confirmed()
                soonest = min((retry[n][1] for n, *_ in pending if n in retry), default=now)
                self.wake.wait(max(RETRY_MIN, soonest - time.monotonic()))
                self.wake.clear()
