"""Pod sandboxes and containers.

A sandbox is what a CRI runtime's "pause" container gives a pod: a network namespace (named, so
``ip netns exec <pod>`` works) with eth0 on the node's bridge, a UTS namespace holding the pod's
hostname, and a mount namespace in which /etc/hosts and /etc/resolv.conf are the pod's own
(``ip netns exec`` bind-mounts /etc/netns/<name>/*, the standard iproute2 mechanism). The pause
process is ``sleep infinity``; containers join its namespaces with nsenter, so containers of a
pod share localhost, hostname and files, as in Kubernetes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulator.errors import RuntimeFailure
from emulator.model import naming
from emulator.model.cluster import ClusterConfig
from emulator.runtime import ovs
from emulator.runtime.proc import ip_batch, run, start_time
from emulator.runtime.records import Records

# The pause process names the pod and sleeps. (A private /tmp would hide an install that lives
# under /tmp, such as a CI checkout; each container has a private working directory instead.)
PAUSE_SCRIPT = 'hostname "$0" && exec sleep infinity'


@dataclass
class SandboxSpec:
    namespace: str
    name: str
    node_index: int
    ip: str
    pod_cidr: str
    gateway_ip: str
    hostname: str
    hosts: str
    resolv_conf: str

    @property
    def netns(self) -> str:
        return naming.pod_netns(self.namespace, self.name)

    @property
    def veth(self) -> str:
        return naming.pod_veth(self.namespace, self.name)

    @property
    def ofport(self) -> int:
        return naming.pod_ofport(self.ip, self.pod_cidr)


@dataclass
class Sandbox:
    spec: SandboxSpec
    directory: Path
    pause_pid: int
    pause_start: int | None
    containers: dict[str, subprocess.Popen] = field(default_factory=dict)


def etc_dir(netns: str) -> Path:
    return Path("/etc/netns") / netns


def create(specs: list[SandboxSpec], config: ClusterConfig, records: Records,
           datapath: ovs.Datapath, base: Path) -> list[Sandbox]:
    """Create many sandboxes with a handful of batched commands.

    Raises:
        RuntimeFailure: the kernel or OVS refused something.
    """
    if not specs:
        return []
    records.add("netns", *(s.netns for s in specs), save=False)
    records.add("links", *(s.veth for s in specs), save=False)
    if not Path("/etc/netns").exists():
        records.add("dirs", "/etc/netns", save=False)  # removed at teardown if left empty
    records.add("dirs", *(str(etc_dir(s.netns)) for s in specs))
    mtu = config.pod_mtu
    root = [f"netns add {s.netns}" for s in specs]
    root += [f"link add {s.veth} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {s.netns}" for s in specs]
    root += [f"link set {s.veth} up" for s in specs]
    ip_batch(root)
    vsctl: list[str] = []
    for s in specs:
        vsctl += ovs.port_args(naming.node_bridge(s.node_index), s.veth, s.ofport)
    ovs.batch(vsctl)
    out = []
    for s in specs:
        mask = config.pods.node_mask
        ip_batch(["link set lo up",
                  f"link set eth0 address {naming.mac_from_ip(s.ip)} up",
                  f"addr add {s.ip}/{mask} dev eth0",
                  f"route add default via {s.gateway_ip} dev eth0"], netns=s.netns)
        if datapath.tx_offload_off:
            run(["ethtool", "-K", s.veth, "tx", "off"], check=False)
            run(["ip", "netns", "exec", s.netns, "ethtool", "-K", "eth0", "tx", "off"], check=False)
        etc = etc_dir(s.netns)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(s.hosts)
        (etc / "resolv.conf").write_text(s.resolv_conf)
        directory = base / "pods" / f"{s.namespace}_{s.name}"
        directory.mkdir(parents=True, exist_ok=True)
        pause = subprocess.Popen(
            ["ip", "netns", "exec", s.netns, "unshare", "--uts", "--", "sh", "-c", PAUSE_SCRIPT,
             s.hostname], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(directory / "pause.log", "wb"), start_new_session=True)
        started = start_time(pause.pid)
        records.add("processes", [pause.pid, started, f"pause {s.namespace}/{s.name}"])
        out.append(Sandbox(s, directory, pause.pid, started))
    for box in out:
        wait_pause(box.pause_pid)
    return out


def wait_pause(pid: int, timeout: float = 10) -> None:
    """Containers may only join once the pause process is in its own UTS namespace with the
    pod's hostname set, i.e. once it has exec'd ``sleep``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep":
                return
        except OSError:
            raise RuntimeFailure(f"pod sandbox process {pid} died at start") from None
        time.sleep(0.005)
    raise RuntimeFailure(f"pod sandbox process {pid} did not start within {timeout}s")


def enter_argv(pause_pid: int, argv: list[str]) -> list[str]:
    """argv that runs ``argv`` inside a pod's network, UTS and mount namespaces."""
    return ["nsenter", "-t", str(pause_pid), "-n", "-u", "-m", "--", *argv]


def start_container(box: Sandbox, name: str, argv: list[str], env: dict[str, str],
                    working_dir: str, records: Records) -> subprocess.Popen:
    """Start one container process; stdout and stderr go to its log file."""
    log = open(box.directory / f"{name}.log", "ab")
    cwd = box.directory / name
    cwd.mkdir(exist_ok=True)
    resolved = shutil.which(argv[0]) or argv[0]
    try:
        proc = subprocess.Popen(enter_argv(box.pause_pid, [resolved, *argv[1:]]), env=env,
                                cwd=working_dir if working_dir and os.path.isdir(working_dir) else cwd,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()
    records.add("processes", [proc.pid, start_time(proc.pid),
                              f"container {box.spec.namespace}/{box.spec.name}/{name}"])
    box.containers[name] = proc
    return proc


def destroy(boxes: list[Sandbox], records: Records) -> None:
    """Stop every process of the sandboxes, then remove their namespaces, ports and files."""
    from emulator.runtime.proc import stop_all
    procs = [(p.pid, start_time(p.pid)) for b in boxes for p in b.containers.values()]
    procs += [(b.pause_pid, b.pause_start) for b in boxes]
    stop_all(procs)
    for b in boxes:
        for p in b.containers.values():
            p.poll()
    remove_network([b.spec.netns for b in boxes], [b.spec.veth for b in boxes], records)
    records.discard("processes", *[p for p in records.items("processes")
                                   if (p[0], p[1]) in set(procs)])


def remove_network(netns: list[str], veths: list[str], records: Records) -> None:
    bridges = [b for b in records.items("ovs_bridges")]
    args: list[str] = []
    for veth in veths:
        args += ["--", "--if-exists", "del-port", veth]
    if bridges and args:
        ovs.batch(args)
    ip_batch([f"link del {v}" for v in veths] + [f"netns del {n}" for n in netns], check=False)
    for n in netns:
        shutil.rmtree(etc_dir(n), ignore_errors=True)
    records.discard("netns", *netns, save=False)
    records.discard("links", *veths, save=False)
    records.discard("dirs", *(str(etc_dir(n)) for n in netns))


def python() -> str:
    return sys.executable
