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

A ``hostNetwork`` pod's sandbox joins its node's network namespace instead of making one (no
interface, no port, no pod sysctls: the node's are the node's); it keeps its own UTS namespace
named after the node (a node here shares the machine's UTS namespace, whose name is not ours to
change), its IPC, PID and mount namespaces.
"""
from __future__ import annotations

import json
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
from emulator.model.pod import DEFAULT_CAPABILITIES, Container, Pod, SecurityContext
from emulator.runtime import kernel, linux, ovs, podfs, volumes
from emulator.runtime.cni import Attachment, Plugins
from emulator.runtime.cgroups import Cgroups
from emulator.runtime.proc import alive, ip_batch, run, signal_alive
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
    host_netns: str = ""  # hostNetwork: the node's network namespace, joined, never made or removed
    volumes: list[dict] = field(default_factory=list)  # runtime.volumes.Mount dicts, made by the kubelet
    node: str = ""  # the node's name (the CNI plugins run in its namespace)
    port_mappings: tuple[dict, ...] = ()  # hostPorts, as the portmap plugin's runtimeConfig names them


@dataclass
class Sandbox:
    spec: SandboxSpec
    directory: Path
    pause_pid: int
    pause_start: int | None
    netns: str
    port: str  # its OVS port: the veth peer of eth0, or (internal-port) eth0 itself; "" on the host network or cni0
    containers: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # name -> (pid, start)
    cni_result: dict | None = None  # cni: flannel: the result of the conflist's ADD (describe shows it)


def port_mappings(pod: Pod) -> tuple[dict, ...]:
    """The pod's hostPorts as the portmap plugin's ``portMappings`` (what a kubelet hands the
    runtime, and the runtime the plugin)."""
    return tuple({"hostPort": p.host_port, "containerPort": p.container_port, "protocol": p.protocol.lower(),
                  **({"hostIP": p.host_ip} if p.host_ip else {})}
                 for c in pod.spec.containers for p in c.ports if p.host_port)


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
    base: Path  # the cluster's run directory
    shim: Shim
    cgroups: Cgroups
    tx_offload_off: bool = False  # the datapath's: veths need checksum offload off (no userspace TSO)
    cni: Plugins | None = None  # cni: flannel: the reference plugins make each pod's network

    @property
    def scope(self) -> naming.Scope:
        return self.records.scope

    # -- sandboxes -----------------------------------------------------------------------
    def create(self, specs: list[SandboxSpec]) -> list[Sandbox | Exception]:
        """Make many sandboxes; each result is the sandbox or why it could not be made.

        ``veth``: the shim makes the namespaces and the veth pair, then the peers become ports of
        their nodes' bridges. ``internal-port``: each pod's port is made on its node's bridge
        first (under a name checked free), then the shim makes the namespaces and moves the port
        in as ``eth0`` (netconf)."""
        internal = self.config.pod_interface == "internal-port"
        results: dict[str, Sandbox | Exception] = {}
        if internal:
            for s in specs:
                if not s.host_netns and kernel.link_exists(self.port(s)):
                    results[s.uid] = kernel.clash("interface", self.port(s), self.records)
            results.update(self._add_ports([s for s in specs if s.uid not in results and not s.host_netns]))
        todo = [s for s in specs if s.uid not in results]
        items = []
        for s in todo:
            directory = self.base / "pods" / naming.pod_dir(s.namespace, s.name)
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            for file, text in (("hosts", s.hosts), ("resolv.conf", s.resolv_conf), ("hostname", s.hostname + "\n")):
                (directory / file).write_text(text)
            item = {"netns": s.host_netns or naming.pod_netns(self.scope, s.namespace, s.name), "hostname": s.hostname,
                    "pause": PAUSE, "sysctls": {} if s.host_netns else POD_SYSCTLS, "pod_dir": str(directory),
                    "etc": {"/etc/hosts": str(directory / "hosts"), "/etc/resolv.conf": str(directory / "resolv.conf"),
                            "/etc/hostname": str(directory / "hostname")},
                    "shared": s.shared, "keep": [CODE_ROOT, sys.prefix], "cgroups": self.cgroups.pod(s.uid),
                    "volumes": s.volumes}
            if s.host_netns:
                item["join_netns"] = True
            elif self.cni is None:
                item["link"] = {"kind": self.config.pod_interface, "port": self.port(s), "tag": self.records.tag,
                                "mtu": self.config.pod_mtu, "mac": naming.mac_from_ip(s.ip), "ip": s.ip,
                                "prefixlen": self.config.pods.node_mask, "gateway": s.gateway_ip}
            items.append(item)
        replies = self.shim.request("sandboxes", items, timeout=30 + 0.1 * len(items)) if items else []
        unused: list[SandboxSpec] = []
        made: list[Sandbox] = []
        for s, item, reply in zip(todo, items, replies):
            if "error" in reply:
                results[s.uid] = RuntimeFailure(reply["error"])
                if not s.host_netns:
                    unused.append(s)
                continue
            self.records.add("processes", [reply["pid"], reply["start"], f"pause {s.namespace}/{s.name}"], save=False)
            box = Sandbox(s, Path(item["pod_dir"]), reply["pid"], reply["start"], item["netns"],
                          "" if s.host_netns or self.cni is not None else self.port(s))
            results[s.uid] = box
            if s.host_netns:
                continue
            self.records.add_netns(item["netns"], reply["netns_ino"], save=False)
            if not internal and self.cni is None:  # the bridge plugin's veth lives in the node's namespace
                self.records.add("links", self.port(s), save=False)
            made.append(box)
        self.records.save()
        if self.cni is not None:
            self._cni_add(made, results)
        elif internal:
            self._del_ports(unused)
        else:
            failed = self._add_ports([b.spec for b in made])
            self._no_tx_offload([b for b in made if b.spec.uid not in failed])
            for box in made:
                if box.spec.uid in failed:
                    self.destroy([box])
                    results[box.spec.uid] = failed[box.spec.uid]
        return [results[s.uid] for s in specs]

    def _attachment(self, box: Sandbox) -> Attachment:
        s = box.spec
        return Attachment(f"/run/netns/{box.netns}", naming.node_netns(self.scope, s.node), s.namespace, s.name,
                          s.uid, s.ip, s.port_mappings)

    def _cni_add(self, made: list[Sandbox], results: dict) -> None:
        """ADD every new sandbox's network (the conflist's plugins); a pod whose ADD failed is
        destroyed and fails alone. The result is kept with the sandbox and in its folder."""
        done = self.cni.add([(b.spec.node, self._attachment(b)) for b in made])
        for box, result in zip(made, done):
            if isinstance(result, Exception):
                self.destroy([box])
                results[box.spec.uid] = result
                continue
            box.cni_result = result
            (box.directory / "cni-result.json").write_text(json.dumps(result, indent=2) + "\n")

    def _no_tx_offload(self, boxes: list[Sandbox]) -> None:
        """Without userspace TSO (not the default) a veth's checksum offload must be off at both
        ends, or the switch forwards packets whose checksums nobody computed."""
        if not self.tx_offload_off:
            return
        for b in boxes:
            run(["ethtool", "-K", b.port, "tx", "off"], check=False)
            run(["ip", "netns", "exec", b.netns, "ethtool", "-K", "eth0", "tx", "off"], check=False)

    def port(self, spec: SandboxSpec) -> str:
        return naming.pod_port(self.scope, spec.namespace, spec.name)

    def _port_args(self, s: SandboxSpec) -> list[str]:
        bridge, ofport = naming.node_bridge(self.scope, s.node_index), naming.pod_ofport(s.ip, s.pod_cidr)
        if self.config.pod_interface == "internal-port":
            return ovs.internal_port_args(bridge, self.port(s), ofport, self.records.tag)
        return ovs.port_args(bridge, self.port(s), ofport)

    def _add_ports(self, specs: list[SandboxSpec]) -> dict[str, Exception]:
        """The pods' ports on their nodes' bridges in one OVS transaction; returns the pods that
        failed, by uid (each pod is retried alone when the batch fails)."""
        failed: dict[str, Exception] = {}
        try:
            ovs.batch([a for s in specs for a in self._port_args(s)])
        except RuntimeFailure:
            for s in specs:  # find the pods that fail on their own; the others go on
                try:
                    ovs.batch(self._port_args(s))
                except RuntimeFailure as exc:
                    failed[s.uid] = exc
        return failed

    def _del_ports(self, specs: list[SandboxSpec]) -> None:
        """Remove the pods' ports (an internal port's tap goes with it, wherever it is), then
        their veths, ours by their tag (the namespace's removal would take them only later)."""
        args: list[str] = []
        for s in specs:
            args += ["--", "--if-exists", "del-port", naming.node_bridge(self.scope, s.node_index), self.port(s)]
        try:
            ovs.batch(args)
        except RuntimeFailure:
            pass
        if self.config.pod_interface == "veth":
            veths = [self.port(s) for s in specs if kernel.link_alias(self.port(s)) == self.records.tag]
            ip_batch([f"link del {v}" for v in veths], check=False)
            self.records.discard("links", *veths, save=False)

    def alive(self, box: Sandbox) -> bool:
        return alive(box.pause_pid, box.pause_start)

    # -- containers ----------------------------------------------------------------------
    def container_dir(self, box: Sandbox, name: str) -> tuple[Path, str]:
        """(host path, path inside the pod) of a container's private working directory."""
        host = box.directory / name
        host.mkdir(exist_ok=True)
        return host, f"{podfs.POD_DIR}/{name}"

    def attach_path(self, pod_uid: str, container: str) -> str:
        """Where the shim listens for attach clients of a container with stdin or tty."""
        return str(self.base / "attach" / naming.attach_socket(pod_uid, container))

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

    def destroy(self, boxes: list[Sandbox], grace: float = 2.0, whole_cluster: bool = False,
                keep_directories: bool = False) -> None:
        """Stop every process of the sandboxes (SIGTERM to the containers, then SIGKILL to each
        pod's PID 1, which ends its whole PID namespace), then remove ports, namespaces,
        cgroups and folders (``keep_directories``: not the folders, which hold the logs of a pod
        that ran to completion). When the whole cluster goes, ports are left to go with their
        bridges (one OVS transaction instead of a thousand)."""
        if not boxes:
            return
        procs = self.terminate(boxes)
        deadline = time.monotonic() + grace
        while any(alive(p, s) for p, s in procs) and time.monotonic() < deadline:
            time.sleep(0.02)
        for b in boxes:
            signal_alive(b.pause_pid, b.pause_start)
        own = [b for b in boxes if not b.spec.host_netns]  # a hostNetwork pod's namespace is its node's
        if self.cni is not None:  # DEL while the namespace is there: host-local frees the address
            for problem in self.cni.delete([(b.spec.node, self._attachment(b), b.cni_result)
                                            for b in own if b.cni_result is not None]):
                print(f"[WARN] {problem}", flush=True)
        elif not whole_cluster:
            self._del_ports([b.spec for b in own])
        kernel.delete_netns(self.records, [b.netns for b in own])
        for b in boxes:
            self.cgroups.remove(b.spec.uid)
            if not keep_directories:
                shutil.rmtree(b.directory, ignore_errors=True)
            volumes.remove(self.base, naming.pod_dir(b.spec.namespace, b.spec.name))
        gone = {(b.pause_pid, b.pause_start) for b in boxes} | set(procs)
        self.records.discard("processes", *[p for p in self.records.items("processes") if (p[0], p[1]) in gone],
                             save=False)
        self.records.data["cgroups"] = list(self.cgroups.made)
        self.records.save()
