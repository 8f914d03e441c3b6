"""Impairments and partitions on a running cluster (issue #16): ``k8semu impair``, ``partition``,
``heal``, the scenario steps of the same names and ``spec.impairments`` at ``up``.

A link has two ends: the eth0 inside its namespace (node, external host or pod) and the peer
the emulation made for it (the underlay veth in the root namespace, or the pod's host-side veth
in the root namespace (openflow) or in its node (flannel, calico)). Bandwidth and netem are
qdiscs on each end's egress, so each direction is shaped where it leaves; loss, partitions and
the MTU live in the inner namespace only (nftables ingress and egress hooks on eth0; a veth
drops what exceeds its MTU both ways), so nothing but tagged links of the cluster's own is ever
touched in the root namespace. Everything is undone by ``heal``, and by ``down``/``cleanup``
with the namespaces and links it lives on.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from emulator.errors import K8semuError, NotFoundError, RuntimeFailure
from emulator.faults import render
from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.model.faults import Impairment, LinkRef, Partition
from emulator.runtime.proc import run

DEFAULT_QDISCS = ("noqueue", "pfifo_fast", "mq", "fq_codel", "pfifo")  # what a new veth has


@dataclass(frozen=True)
class End:
    netns: str | None  # None: the root namespace
    dev: str

    def argv(self, *argv: str) -> list[str]:
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(argv)


@dataclass(frozen=True)
class Link:
    """A link's two ends, resolved for the cluster as it is now."""
    ref: LinkRef
    inner: End  # eth0 in the link's own namespace
    outer: End | None  # the peer (None: an OVS internal port has none)
    host: str  # the node or external host it belongs to (a pod's: its node)


def netem_missing() -> str:
    """"" when this kernel has sch_netem, else tc's answer: asked in a namespace of its own
    (``unshare -n``, gone when tc exits), so detecting it changes nothing on the machine."""
    done = subprocess.run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                          capture_output=True, text=True, timeout=10)
    return "" if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")


class Faults:
    """The impairments and partitions in force, and the kernel state that makes them."""

    def __init__(self, config: ClusterConfig, scope: naming.Scope) -> None:
        self.config, self.scope = config, scope
        self.links: dict[LinkRef, tuple[Impairment, Link]] = {}
        self.partitions: dict[str, Partition] = {}
        self.mtus: dict[End, int] = {}  # the MTU an end had before we changed it
        self.shaped: set[End] = set()  # ends whose root qdisc is ours
        self._netem: str | None = None

    # -- resolving ---------------------------------------------------------------------------
    def hosts(self) -> list[str]:
        return [n.name for n in self.config.nodes] + [h.name for h in self.config.external_hosts]

    def host_link(self, ref: LinkRef) -> Link:
        """A node's or external host's link (a bare name is whichever of them has it).

        Raises:
            NotFoundError: no such node or external host.
        """
        node = next((n for n in self.config.nodes if n.name == ref.name), None) if ref.kind != "external" else None
        ext = next((h for h in self.config.external_hosts if h.name == ref.name), None) \
            if ref.kind != "node" and node is None else None
        if node is None and ext is None:
            what = {"node": "node", "external": "external host"}.get(ref.kind, "node or external host")
            raise NotFoundError(f"no {what} {ref.name!r} in cluster {self.config.name}")
        netns = naming.node_netns(self.scope, ref.name)
        if node is not None:
            peer = End(None, naming.underlay_veth(self.scope, node.index))
            return Link(LinkRef("node", node.name), End(netns, "eth0"), peer, node.name)
        peer = End(None, naming.external_veth(self.scope, ext.index))
        return Link(LinkRef("external", ext.name), End(netns, "eth0"), peer, ext.name)

    def pod_link(self, ref: LinkRef, netns: str, node: str) -> Link:
        """A pod's eth0 and its host-side peer, found by the peer's interface index in the
        namespace that holds it (the root namespace on openflow, the node's on kernel planes)."""
        shown = json.loads(run(["ip", "-n", netns, "-j", "link", "show", "eth0"]).stdout or "[]")
        peer_index = shown[0].get("link_index") if shown else None
        outer = None
        if peer_index is not None:
            where = naming.node_netns(self.scope, node) if self.config.kernel_dataplane else None
            links = json.loads(run((["ip", "-n", where] if where else ["ip"]) + ["-j", "link", "show"]).stdout or "[]")
            name = next((x["ifname"] for x in links if x.get("ifindex") == peer_index), None)
            if name is None:
                raise RuntimeFailure(f"{ref}: the host side of its eth0 (ifindex {peer_index}) was not found")
            outer = End(where, name)
        return Link(ref, End(netns, "eth0"), outer, node)

    # -- changing ----------------------------------------------------------------------------
    def check_netem(self, imp: Impairment) -> None:
        """Raises K8semuError in one line when ``imp`` needs sch_netem and this kernel lacks it."""
        if not imp.needs_netem:
            return
        if self._netem is None:
            self._netem = netem_missing()
        if self._netem:
            raise K8semuError(f"{imp.link}: delay, jitter, duplicate and reorder need the kernel's sch_netem, which "
                              f"this kernel does not have (tc: {self._netem}); bandwidth, loss, mtu and partitions "
                              "work without it")

    def impair(self, imp: Impairment, link: Link) -> str:
        """Give ``link`` exactly ``imp`` (what it had before is replaced whole)."""
        self.check_netem(imp)
        if (imp.bandwidth or imp.needs_netem) and link.outer is None:
            raise K8semuError(f"{imp.link}: its eth0 is an OVS internal port, with no peer to shape the way in; "
                              "use podInterface: veth, or loss and mtu only")
        for end in (link.inner, link.outer):
            if end is not None and (imp.bandwidth or imp.needs_netem):
                self._check_qdisc_free(end, imp.link)
        old = self.links.get(imp.link)
        self.links[imp.link] = (imp, link)
        try:
            self._apply_link(imp, link, old[0] if old else None)
            self._sync_nft({link.inner.netns})
        except (RuntimeFailure, OSError) as exc:
            self.links.pop(imp.link, None)
            self._undo_link(link)
            raise K8semuError(f"{imp.link}: the kernel refused the impairment ({exc}); it was undone") from None
        return render.summary(imp)

    def partition(self, part: Partition) -> str:
        if part.name in self.partitions:
            raise K8semuError(f"partition {part.name!r} already exists (k8semu heal partition/{part.name} first)")
        self.partitions[part.name] = part
        try:
            self._sync_nft({naming.node_netns(self.scope, h) for h in part.a + part.b})
        except RuntimeFailure:
            del self.partitions[part.name]
            self._sync_nft({naming.node_netns(self.scope, h) for h in part.a + part.b})
            raise
        return f"partition/{part.name} created: {part.describe()}"

    def heal(self, what: str) -> list[str]:
        """Undo one impairment (its link, as ``impair`` named it), one partition
        (``partition/NAME``) or everything (``all``); returns a line for each.

        Raises:
            NotFoundError: nothing by that name is in force.
        """
        lines = []
        if what == "all":
            for ref in sorted(self.links):
                lines += self.heal(str(ref))
            for name in sorted(self.partitions):
                lines += self.heal(f"partition/{name}")
            return lines or ["nothing to heal"]
        if what.startswith("partition/"):
            part = self.partitions.pop(what.split("/", 1)[1], None)
            if part is None:
                raise NotFoundError(f"no {what} in force")
            self._sync_nft({naming.node_netns(self.scope, h) for h in part.a + part.b})
            return [f"{what} healed"]
        entry = next(((ref, e) for ref, e in self.links.items() if str(ref) == what), None)
        if entry is None:
            raise NotFoundError(f"no impairment on {what!r} (k8semu impair lists those in force)")
        ref, (_, link) = entry
        del self.links[ref]
        self._undo_link(link)
        self._sync_nft({link.inner.netns})
        return [f"{ref} healed"]

    def forget_pod(self, ref: LinkRef) -> None:
        """A pod's sandbox went, and its impairment with its namespace and veth."""
        entry = self.links.pop(ref, None)
        if entry is not None:
            for end in (entry[1].inner, entry[1].outer):
                self.shaped.discard(end)
                self.mtus.pop(end, None)

    def report(self) -> dict:
        return {"links": [{**imp.to_wire(), "summary": imp.describe()} for imp, _ in
                          (self.links[r] for r in sorted(self.links))],
                "partitions": [{**p.to_wire(), "summary": p.describe()} for _, p in sorted(self.partitions.items())]}

    # -- the kernel --------------------------------------------------------------------------
    def _check_qdisc_free(self, end: End, ref: LinkRef) -> None:
        if end in self.shaped:
            return
        shown = json.loads(run(end.argv("tc", "-j", "qdisc", "show", "dev", end.dev, "root")).stdout or "[]")
        kind = shown[0].get("kind", "") if shown else ""
        if kind and kind not in DEFAULT_QDISCS:
            raise K8semuError(f"{ref}: {end.dev} already has a {kind} qdisc that k8semu did not put there "
                              "(a bandwidth annotation's?); it was left as it is")

    def _apply_link(self, imp: Impairment, link: Link, old: Impairment | None) -> None:
        for end in (link.inner, link.outer):
            if end is None:
                continue
            argvs = render.qdisc_argv(end.dev, imp)
            if not argvs and end in self.shaped:
                run(end.argv(*render.clear_argv(end.dev)), check=False)
                self.shaped.discard(end)
            if argvs and end in self.shaped and old is not None and old.needs_netem != imp.needs_netem:
                run(end.argv(*render.clear_argv(end.dev)), check=False)  # another root kind: start over
            for argv in argvs:
                run(end.argv(*argv))
                self.shaped.add(end)
        inner = link.inner
        if imp.mtu:
            self.mtus.setdefault(inner, self._mtu(inner))
            run(inner.argv("ip", "link", "set", "dev", inner.dev, "mtu", str(imp.mtu)))
        elif inner in self.mtus:
            run(inner.argv("ip", "link", "set", "dev", inner.dev, "mtu", str(self.mtus.pop(inner))))

    def _undo_link(self, link: Link) -> None:
        for end in (link.inner, link.outer):
            if end is not None and end in self.shaped:
                run(end.argv(*render.clear_argv(end.dev)), check=False)
                self.shaped.discard(end)
        if link.inner in self.mtus:
            run(link.inner.argv("ip", "link", "set", "dev", link.inner.dev, "mtu", str(self.mtus.pop(link.inner))),
                check=False)

    @staticmethod
    def _mtu(end: End) -> int:
        shown = json.loads(run(end.argv("ip", "-j", "link", "show", "dev", end.dev)).stdout or "[]")
        return int(shown[0]["mtu"])

    def _macs(self, hosts: set[str]) -> dict[str, str]:
        out = {}
        for host in hosts:
            shown = json.loads(run(["ip", "-n", naming.node_netns(self.scope, host), "-j", "link", "show",
                                    "eth0"]).stdout or "[]")
            out[host] = shown[0]["address"]
        return out

    def _sync_nft(self, namespaces: set[str | None]) -> None:
        """Rewrite the k8semu_faults table of each namespace from everything in force."""
        parts = list(self.partitions.values())
        macs = self._macs({h for p in parts for h in p.a + p.b})
        for netns in sorted(n for n in namespaces if n):
            rules = render.Rules()
            for imp, link in self.links.values():
                if link.inner.netns == netns and imp.loss:
                    render.add_loss(rules, imp)
            for part in parts:
                for host in part.a + part.b:
                    if naming.node_netns(self.scope, host) == netns:
                        render.add_partition(rules, part, host, macs)
            run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=render.nft_script(rules))


def apply_spec(faults: Faults) -> None:
    """``spec.impairments`` (links of nodes and external hosts, partitions) at ``up``, once the
    nodes exist.

    Raises:
        K8semuError: one line, as ``k8semu impair`` would say it (e.g. delay without sch_netem).
    """
    for imp in faults.config.impairments:
        faults.impair(imp, faults.host_link(imp.link))
    for part in faults.config.partitions:
        faults.partition(part)
