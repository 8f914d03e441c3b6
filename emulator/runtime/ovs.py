"""Open vSwitch: start it if needed, pick the datapath, create bridges and ports.

Kernel datapath first: where the ``openvswitch`` module loads, bridges use ``system``. Otherwise
bridges use the userspace ``netdev`` datapath, whose TCP works only if
``other_config:userspace-tso-enable=true`` was set before ovs-vswitchd started (17 Gbit/s
measured) or checksum offload is off on every veth (2 Gbit/s). When k8semu starts OVS itself it
sets the former; when it finds OVS already running without it, it falls back to the latter.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass

from emulator.errors import MissingToolError, RuntimeFailure
from emulator.runtime.proc import run

OVS_RUN = "/var/run/openvswitch"
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


@dataclass(frozen=True)
class Datapath:
    type: str  # system | netdev
    tx_offload_off: bool  # netdev without userspace TSO: turn checksum offload off on veths


def vsctl(*args: str, timeout: float = 30) -> str:
    return run(["ovs-vsctl", f"--timeout={int(timeout)}", *args], timeout=timeout + 5).stdout


def _running(daemon: str) -> bool:
    pidfile = f"{OVS_RUN}/{daemon}.pid"
    try:
        pid = int(open(pidfile).read().strip())
    except (OSError, ValueError):
        return False
    return os.path.exists(f"/proc/{pid}")


def kernel_datapath_available() -> bool:
    if os.path.isdir("/sys/module/openvswitch"):
        return True
    return shutil.which("modprobe") is not None and run(
        ["modprobe", "-q", "openvswitch"], check=False).returncode == 0


def ensure_running() -> Datapath:
    """Start ovsdb-server and ovs-vswitchd when they are not running; say which datapath to use.

    Raises:
        MissingToolError: Open vSwitch is not installed.
        RuntimeFailure: it would not start.
    """
    if shutil.which("ovs-vswitchd") is None:
        raise MissingToolError("ovs-vswitchd", "install Open vSwitch: sudo make install")
    kernel = kernel_datapath_available()
    if not _running("ovsdb-server"):
        run([OVS_CTL, "--no-ovs-vswitchd", "--system-id=random", "start"], timeout=60)
    started_here = False
    if not _running("ovs-vswitchd"):
        if not kernel:
            run(["ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".",
                 "other_config:userspace-tso-enable=true"])
        os.makedirs("/var/log/openvswitch", exist_ok=True)
        # ovs-ctl would insist on loading the kernel module; start the daemon directly.
        run(["ovs-vswitchd", f"unix:{OVS_RUN}/db.sock", "-vconsole:emer", "-vsyslog:err",
             "-vfile:info", "--no-chdir", "--log-file=/var/log/openvswitch/ovs-vswitchd.log",
             f"--pidfile={OVS_RUN}/ovs-vswitchd.pid", "--detach"], timeout=60)
        started_here = True
    deadline = time.monotonic() + 20
    while run(["ovs-vsctl", "--timeout=2", "show"], check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeFailure("Open vSwitch did not answer within 20 s")
        time.sleep(0.1)
    if kernel:
        return Datapath("system", False)
    tso = run(["ovs-vsctl", "--if-exists", "get", "Open_vSwitch", ".",
               "other_config:userspace-tso-enable"], check=False).stdout.strip().strip('"')
    return Datapath("netdev", not (tso == "true" or started_here))


def bridge_args(name: str, dpid: int, datapath: str, controller_port: int) -> list[str]:
    """ovs-vsctl arguments that create a bridge held by our controller only.

    ``fail_mode=secure``: if the controller goes away the switch keeps its flows and never
    falls back to standalone learning (no NORMAL action, ever).
    """
    return ["--", "--may-exist", "add-br", name,
            "--", "set", "bridge", name, f"datapath_type={datapath}", "fail_mode=secure",
            "protocols=OpenFlow13", f"other-config:datapath-id={dpid:016x}",
            "other-config:disable-in-band=true",
            "--", "set-controller", name, f"tcp:127.0.0.1:{controller_port}",
            "--", "set", "controller", name, "connection_mode=out-of-band",
            "max_backoff=1000", "inactivity_probe=0"]


def port_args(bridge: str, port: str, ofport: int) -> list[str]:
    return ["--", "--may-exist", "add-port", bridge, port,
            "--", "set", "interface", port, f"ofport_request={ofport}"]


def del_bridge_args(name: str) -> list[str]:
    return ["--", "--if-exists", "del-br", name]


def del_port_args(bridge: str, port: str) -> list[str]:
    return ["--", "--if-exists", "del-port", bridge, port]


def batch(args: list[str], timeout: float = 60) -> None:
    """One ovs-vsctl transaction for many operations (``--`` separated)."""
    if args:
        vsctl(*args[1:] if args[0] == "--" else args, timeout=timeout)


def relax_userspace_conntrack() -> None:
    """Turn off the userspace conntrack's TCP sequence check (OVS 3.1, netdev datapath).

    With it on, about one closed connection in seven stayed ESTABLISHED in the connection table
    here (its FIN judged out of window), and a later connection reusing the client port was
    then dropped as invalid: measured as 1 s SYN retransmits and a ClusterIP connection rate
    cut by 80%. Off, it behaves like Linux conntrack with ``nf_conntrack_tcp_be_liberal=1``.
    The setting belongs to the userspace datapath, which exists once a netdev bridge does.
    """
    run(["ovs-appctl", "dpctl/ct-disable-tcp-seq-chk"], check=False)
