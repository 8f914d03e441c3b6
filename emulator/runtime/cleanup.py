"""Undo everything a cluster made, from its records only (Mininet's ``mn -c``, without the
pattern matching): processes by PID and start time, OVS bridges, interfaces and namespaces by
the names written down before they were created, files under /etc/netns that it created.
Every step tolerates things that are already gone, so it can run after any crash, twice.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from emulator.runtime import ovs
from emulator.runtime.proc import alive, ip_batch, kill_group, run, stop_all
from emulator.runtime.records import Records


def stop_manager(pid: int, started: int | None, timeout: float = 60) -> None:
    """Ask a live manager to tear down (SIGTERM) and wait; kill it if it will not go. Then kill
    what is left of its process group: short-lived children it had not recorded (probes,
    ip/ovs-vsctl calls) when it died. The group id is the manager's PID (it leads its own
    session); Linux does not hand out a PID that is still a live group's id, so this reaches
    only the manager's own children."""
    _stop(pid, started, timeout)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(pid: int, started: int | None, timeout: float) -> None:
    if not alive(pid, started):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid, started):
        kill_group(pid, started, signal.SIGKILL)


def teardown(records: Records, keep_self: bool = True) -> None:
    """Remove what ``records`` lists, then the records themselves."""
    me = os.getpid()
    entries = [p for p in records.items("processes") if not (keep_self and p[0] == me)]
    for pid, started, what in entries:
        if what.startswith("node "):  # Mininet's interactive bash ignores SIGTERM; it holds no state
            kill_group(pid, started, signal.SIGKILL)
    stop_all([(p[0], p[1]) for p in entries if not p[2].startswith("node ")])
    bridges = records.items("ovs_bridges")
    if bridges:
        args: list[str] = []
        for bridge in bridges:
            args += ovs.del_bridge_args(bridge)
        if run(["ovs-vsctl", "--timeout=5", "show"], check=False).returncode == 0:
            ovs.batch(args)
    links = records.items("links")
    existing = set(os.listdir("/sys/class/net"))
    ip_batch([f"link del {name}" for name in links if name in existing], check=False)
    netns_dir = Path("/var/run/netns")
    ip_batch([f"netns del {n}" for n in records.items("netns") if (netns_dir / n).exists()],
             check=False)
    for d in records.items("dirs"):
        if d.startswith("/etc/netns/"):
            shutil.rmtree(d, ignore_errors=True)
    if "/etc/netns" in records.items("dirs"):
        try:
            os.rmdir("/etc/netns")  # only if empty: someone else may use it too
        except OSError:
            pass
    for kind in ("processes", "ovs_bridges", "links", "netns", "dirs"):
        records.data[kind] = []
    records.save()
