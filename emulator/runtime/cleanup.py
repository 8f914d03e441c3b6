"""Undo everything a cluster made, from its records and tags only (Mininet's ``mn -c`` without
its pattern matching): processes by PID and start time, then every process still inside one of
the cluster's network namespaces or cgroups (whatever it did to leave its process group), OVS
bridges and links carrying the run's tag, network namespaces whose inode is the recorded one,
cgroup directories k8semu made (rmdir only), and finally the Open vSwitch settings (the last
cluster restores them). Every step tolerates things already gone, so it can run after any
crash, twice.

What outlives a machine restart is what the OVS database file holds: the bridges of a run that
never ended, and a setting k8semu changed. ``remove_orphans`` finds them by their tag when no run
directory is left to name them, starts OVS for as long as it takes to delete them (ovs-vswitchd
removes a netdev bridge's tap device with the bridge), and restores the setting.
"""
from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

from emulator.runtime import flannelnet, kernel, ovs
from emulator.runtime.proc import alive, kill_group, signal_alive, stop_all
from emulator.runtime.records import Records


def stop_manager(pid: int, started: int | None, timeout: float = 60) -> None:
    """Ask a live manager to tear down (SIGTERM) and wait; kill it if it will not go. Then kill
    what is left of its process group: short-lived children it had not recorded (probes,
    ip/ovs-vsctl calls) when it died. The group id is the manager's PID (it leads its own
    session); Linux does not hand out a PID that is still a live group's id, so this reaches
    only the manager's own children."""
    if signal_alive(pid, started, signal.SIGTERM):
        deadline = time.monotonic() + timeout
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid, started):
            kill_group(pid, started, signal.SIGKILL)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def processes_in(netns_inodes: set[int], cgroup_dirs: list[str]) -> set[int]:
    """PIDs living in one of these network namespaces or cgroups."""
    found: set[int] = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino in netns_inodes:
                found.add(int(entry))
        except OSError:
            continue
    for directory in cgroup_dirs:
        for procs in Path(directory).rglob("cgroup.procs") if os.path.isdir(directory) else ():
            try:
                found |= {int(p) for p in procs.read_text().split()}
            except (OSError, ValueError):
                pass
    found.discard(me)
    return found


def kill_leftovers(records: Records, rounds: int = 50) -> None:
    inodes = {ino for _, ino in records.items("netns") if ino}
    for _ in range(rounds):
        left = processes_in(inodes, records.items("cgroups"))
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def teardown(records: Records, keep_self: bool = True) -> list[str]:
    """Remove what ``records`` and the run's tag name; returns notes for the log (Open vSwitch
    settings restored, names left alone because another object holds them now)."""
    me = os.getpid()
    entries = [p for p in records.items("processes") if not (keep_self and p[0] == me)]
    for pid, started, what in entries:
        if what.startswith("node ") or what.startswith("pause "):  # no state to save: no grace
            kill_group(pid, started, signal.SIGKILL)
    stop_all([(p[0], p[1]) for p in entries if not (p[2].startswith("node ") or p[2].startswith("pause "))])
    kill_leftovers(records)
    notes = []
    if not ovs.server_running() and any(tag == records.tag for _, tag in ovs.tagged_bridges()):
        ovs.ensure_running(records.cluster)  # its bridges are in the file of an OVS that is down
    bridges = sorted(set(kernel.ovs_tagged_bridges(records.tag)))
    if bridges:
        args: list[str] = []
        for bridge in bridges:
            args += ovs.del_bridge_args(bridge)
        ovs.batch(args)
    # what the CNI plugins made for pods the manager did not live to DEL (cni: flannel): DEL from
    # libcni's cache while the nodes' namespaces are there, as a runtime does after a crash
    deleted, problems = flannelnet.delete_left(records.path.parent, records.scope)
    if deleted:
        notes.append(f"CNI DEL run for {deleted} pod network(s) left by the manager")
    notes += [f"CNI DEL: {p}" for p in problems]
    foreign = kernel.delete_netns(records)  # first: the kernel takes the veths with their namespaces
    kernel.delete_links(records)
    notes += [f"network namespace {n} now belongs to someone else: left alone" for n in foreign]
    cgroup_dirs = records.items("cgroups")
    for directory in sorted(cgroup_dirs, key=len, reverse=True):
        # below a directory k8semu made, every directory is its too (a crash may have cut the
        # record short): cgroupfs removes a directory only with rmdir, deepest first
        for below, subdirs, _ in (os.walk(directory, topdown=False) if os.path.isdir(directory) else ()):
            for sub in subdirs:
                try:
                    os.rmdir(os.path.join(below, sub))
                except OSError:
                    pass
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError as exc:
            notes.append(f"cgroup {directory}: {exc.strerror}")
    for shared in {str(Path(d).parents[len(Path(d).parts) - Path(d).parts.index("k8semu") - 2])
                   for d in cgroup_dirs if "k8semu" in Path(d).parts}:
        try:
            os.rmdir(shared)  # the "k8semu" folder all clusters share: gone with the last of them
        except OSError:
            pass
    for path in records.items("files"):
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):  # only ever a socket k8semu's controller made
                os.unlink(path)
        except OSError:
            pass
    for kind in ("processes", "ovs_bridges", "links", "cgroups", "files"):
        records.data[kind] = []
    records.save()
    notes += ovs.release(records.cluster)
    return notes


ORPHANS = "(orphans)"  # the user ovs.json counts while remove_orphans has OVS up


def remove_orphans(known_tags: set[str]) -> list[str]:
    """Delete the OVS bridges whose tag no run directory holds (their run never ended and /run
    was wiped since), and restore a setting k8semu left changed. Returns notes for the user."""
    orphans = [(name, tag) for name, tag in ovs.tagged_bridges() if tag not in known_tags]
    if not orphans and (known_tags or not ovs.setting_left_changed()):
        return []
    ovs.ensure_running(ORPHANS)
    notes = []
    try:
        args: list[str] = []
        for name, _ in orphans:
            args += ovs.del_bridge_args(name)
        ovs.batch(args)
        notes = [f"removed Open vSwitch bridge {name} of a run that never ended ({tag})" for name, tag in orphans]
    finally:
        notes += ovs.release(ORPHANS)
    return notes
