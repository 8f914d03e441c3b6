"""Pod sandboxes and containers: what a CRI runtime gives a pod, made by the shim.

A sandbox is a pod's namespaces held by its PID 1 (catatonit, the pause process): network
(named ``<cluster>_<namespace>_<pod>`` under /run/netns, with eth0 on the node's bridge), UTS
(the pod's hostname), IPC, PID (its own /proc) and mount (``podfs``: the machine's files
read-only, secrets masked, the pod's own /etc/hosts and /etc/resolv.conf). Containers are
processes the shim starts inside those namespaces, in their own cgroups, with the capabilities a
container runtime gives (``CAPABILITIES``), no_new_privs, and the manifest's user.

Work is batched (one shim request, one ``ip -batch``, one ovs-vsctl transaction for many pods);
when a batch fails, each pod is retried alone, so one pod that cannot be made fails alone and
the others start. Destroying a sandbox kills its PID 1, which takes every process in the pod's
PID namespace with it, whatever it did to leave its process group.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulator import __file__ as package_file
from emulator.errors import RuntimeFailure
from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.model.pod import DEFAULT_CAPABILITIES, Container, SecurityContext
from emulator.runtime import kernel, linux, ovs, podfs
from emulator.runtime.cgroups import Cgroups
from emulator.runtime.proc import alive, ip_batch, run
from emulator.runtime.records import Records
from emulator.runtime.shimclient import Shim

POD_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
PAUSE = shutil.which("catatonit") or "/usr/bin/catatonit"
CODE_ROOT = str(Path(package_file).resolve().parents[1])  # k8semu's checkout, shown to pods read-only


@dataclass
class SandboxSpec:
    namespace: str
    name: str
    uid: str
    node_index: int
    ip: str
    pod_cidr: str
    gateway_ip: str
    hostname: str
    hosts: str
    resolv_conf: str
    shared: dict[str, str] = field(default_factory=dict)  # name -> host folder (system pods only)


@dataclass
class Sandbox:
    spec: SandboxSpec
    directory: Path
    pause_pid: int
    pause_start: int | None
    netns: str
    veth: str
    containers: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # name -> (pid, start)


def capabilities(container: Container, pod_security: SecurityContext) -> set[int]:
    """The capability numbers a container's processes keep."""
    sec = container.security
    if sec.privileged:
        return set(linux.CAPABILITIES.values())
    names = (set(DEFAULT_CAPABILITIES) | set(sec.add)) - set(sec.drop)
    if "ALL" in sec.drop:
        names = set(sec.add)
    return {linux.CAPABILITIES[n] for n in names if n in linux.CAPABILITIES}


def capability_names(container: Container, pod_security: SecurityContext) -> list[str]:
    numbers = capabilities(container, pod_security)
    return sorted(name for name, number in linux.CAPABILITIES.items() if number in numbers)


@dataclass
class SandboxRuntime:
    """Creates and destroys sandboxes and starts processes in them (the kubelet's runtime)."""
    config: ClusterConfig
    records: Records
    datapath: ovs.Datapath
    base: Path  # the cluster's run directory
    shim: Shim
    cgroups: Cgroups

    @property
    def scope(self) -> naming.Scope:
        return self.records.scope

    # -- sandboxes -----------------------------------------------------------------------
    def create(self, specs: list[SandboxSpec]) -> list[Sandbox | Exception]:
        """Make many sandboxes; each result is the sandbox or why it could not be made."""
        results: list[Sandbox | Exception] = []
        items = []
        for s in specs:
            directory = self.base / "pods" / naming.pod_dir(s.namespace, s.name)
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            for file, text in (("hosts", s.hosts), ("resolv.conf", s.resolv_conf), ("hostname", s.hostname + "\n")):
                (directory / file).write_text(text)
            items.append({"netns": naming.pod_netns(self.scope, s.namespace, s.name), "hostname": s.hostname,
                          "pause": PAUSE, "sysctls": POD_SYSCTLS, "pod_dir": str(directory),
                          "etc": {"/etc/hosts": str(directory / "hosts"), "/etc/resolv.conf": str(directory / "resolv.conf"),
                                  "/etc/hostname": str(directory / "hostname")},
                          "shared": s.shared, "keep": [CODE_ROOT, sys.prefix],
                          "cgroups": self.cgroups.pod(s.uid),
                          "link": {"host_veth": naming.pod_veth(self.scope, s.namespace, s.name), "tag": self.records.tag,
                                   "mtu": self.config.pod_mtu, "mac": naming.mac_from_ip(s.ip), "ip": s.ip,
                                   "prefixlen": self.config.pods.node_mask, "gateway": s.gateway_ip}})
        replies = self.shim.request("sandboxes", items, timeout=30 + 0.1 * len(items))
        boxes: list[Sandbox] = []
        for s, item, reply in zip(specs, items, replies):
            if "error" in reply:
                results.append(RuntimeFailure(reply["error"]))
                continue
            self.records.add("processes", [reply["pid"], reply["start"], f"pause {s.namespace}/{s.name}"], save=False)
            self.records.add_netns(item["netns"], reply["netns_ino"], save=False)
            self.records.add("links", item["link"]["host_veth"], save=False)
            box = Sandbox(s, Path(item["pod_dir"]), reply["pid"], reply["start"], item["netns"],
                          naming.pod_veth(self.scope, s.namespace, s.name))
            boxes.append(box)
            results.append(box)
        self.records.save()
        failed = self._network(boxes)
        for i, r in enumerate(results):
            if isinstance(r, Sandbox) and r.spec.uid in failed:
                self.destroy([r])
                results[i] = failed[r.spec.uid]
        return results

    def _network(self, boxes: list[Sandbox]) -> dict[str, Exception]:
        """Each sandbox's veth (made with it, by the shim) as a port of its node's bridge, in one
        OVS transaction; returns the pods that failed, by uid (retried alone when the batch fails)."""
        failed: dict[str, Exception] = {}

        def port(b: Sandbox) -> list[str]:
            return ovs.port_args(naming.node_bridge(self.scope, b.spec.node_index), b.veth,
                                 naming.pod_ofport(b.spec.ip, b.spec.pod_cidr))
        try:
            ovs.batch([a for b in boxes for a in port(b)])
        except RuntimeFailure:
            for b in boxes:  # find the pods that fail on their own; the others go on
                try:
                    ovs.batch(port(b))
                except RuntimeFailure as exc:
                    failed[b.spec.uid] = exc
        if self.datapath.tx_offload_off:  # only without userspace TSO (not the default)
            for b in boxes:
                if b.spec.uid not in failed:
                    run(["ethtool", "-K", b.veth, "tx", "off"], check=False)
                    run(["ip", "netns", "exec", b.netns, "ethtool", "-K", "eth0", "tx", "off"], check=False)
        return failed

    def alive(self, box: Sandbox) -> bool:
        return alive(box.pause_pid, box.pause_start)

    # -- containers ----------------------------------------------------------------------
    def container_dir(self, box: Sandbox, name: str) -> tuple[Path, str]:
        """(host path, path inside the pod) of a container's private working directory."""
        host = box.directory / name
        host.mkdir(exist_ok=True)
        return host, f"{podfs.POD_DIR}/{name}"

    def start(self, requests: list[dict]) -> list[dict]:
        """Start processes: each request names its sandbox (``box``), argv, env, cwd, log,
        cgroups, caps, uid, gid; each result is {"pid", "start"} or {"error"}."""
        items = []
        for r in requests:
            box = r.pop("box")
            items.append({**r, "pause_pid": box.pause_pid, "pause_start": box.pause_start})
        return self.shim.request("start", items, timeout=30 + 0.05 * len(items))

    # -- teardown ------------------------------------------------------------------------
    def terminate(self, boxes: list[Sandbox]) -> list[tuple[int, int | None]]:
        """SIGTERM to every container process of the sandboxes; returns them (pid, start)."""
        procs = [(pid, start) for b in boxes for pid, start in b.containers.values()]
        for pid, start in procs:
            if alive(pid, start):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        return procs

    def running(self, box: Sandbox) -> bool:
        """Some container process of the sandbox is still alive."""
        return any(alive(pid, start) for pid, start in box.containers.values())

    def destroy(self, boxes: list[Sandbox], grace: float = 2.0, whole_cluster: bool = False) -> None:
        """Stop every process of the sandboxes (SIGTERM to the containers, then SIGKILL to each
        pod's PID 1, which ends its whole PID namespace), then remove ports, veths, namespaces,
        cgroups and folders. When the whole cluster goes, ports and veths are left to go with
        their bridges and namespaces (one OVS transaction and the kernel's batched namespace
        cleanup instead of a thousand of each)."""
        procs = self.terminate(boxes)
        deadline = time.monotonic() + grace
        while any(alive(p, s) for p, s in procs) and time.monotonic() < deadline:
            time.sleep(0.02)
        for b in boxes:
            if alive(b.pause_pid, b.pause_start):
                os.kill(b.pause_pid, signal.SIGKILL)
        if not whole_cluster:
            args: list[str] = []
            for b in boxes:
                args += ["--", "--if-exists", "del-port", naming.node_bridge(self.scope, b.spec.node_index), b.veth]
            try:
                ovs.batch(args)
            except RuntimeFailure:
                pass
            veths = [b.veth for b in boxes if kernel.link_alias(b.veth) == self.records.tag]
            ip_batch([f"link del {v}" for v in veths], check=False)
            self.records.discard("links", *veths, save=False)
        kernel.delete_netns(self.records, [b.netns for b in boxes])
        for b in boxes:
            self.cgroups.remove(b.spec.uid)
            shutil.rmtree(b.directory, ignore_errors=True)
        gone = {(b.pause_pid, b.pause_start) for b in boxes} | set(procs)
        self.records.discard("processes", *[p for p in self.records.items("processes") if (p[0], p[1]) in gone],
                             save=False)
        self.records.data["cgroups"] = list(self.cgroups.made)
        self.records.save()
