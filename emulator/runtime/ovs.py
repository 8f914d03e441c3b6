"""Open vSwitch: start it if needed, pick the datapath, create bridges and ports, and leave it
as it was found.

Kernel datapath first: where the ``openvswitch`` module loads, bridges use ``system``. Otherwise
bridges use the userspace ``netdev`` datapath, whose TCP works only if
``other_config:userspace-tso-enable=true`` was set before ovs-vswitchd started (17 Gbit/s
measured) or checksum offload is off on every veth (2 Gbit/s). When k8semu starts OVS itself it
sets the former; when it finds OVS already running without it, it falls back to the latter.

OVS is shared by every cluster on the machine (and by whatever else uses it), so what k8semu
changes is written to ``ovs.json`` in the run directory under the machine lock: the daemons it
started (PID and start time), the conntrack TCP sequence check it turned off, and the clusters
using it. When the last cluster goes down (or is cleaned up), each change is undone and the
daemons k8semu started are stopped.

The OVS database outlives the run directory (it is on disk, /run is not): after a machine
restart or a killed container, the bridges of a cluster that never went down come back with the
next ovs-vswitchd. So the database setting k8semu changes carries its old value beside it, in
the same transaction (``external_ids:k8semu-tso-previous``), and every bridge carries its run's
tag: ``cleanup`` finds both there even when the run directory is gone.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass

from emulator.errors import MissingToolError, RuntimeFailure
from emulator.runtime.proc import alive, run, signal_alive, start_time
from emulator.runtime.records import base_dir, machine_lock

OVS_RUN = "/var/run/openvswitch"
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
TSO_KEY = "other_config:userspace-tso-enable"
TSO_PREVIOUS = "k8semu-tso-previous"  # external_ids key: the value TSO_KEY had before k8semu set it
UNSET = "(unset)"
DB_FILE = "/etc/openvswitch/conf.db"  # Debian's ovs-ctl default
TAG_KEY = "k8semu"  # external_ids key on every bridge k8semu makes: the run's tag


@dataclass(frozen=True)
class Datapath:
    type: str  # system | netdev
    tx_offload_off: bool  # netdev without userspace TSO: turn checksum offload off on veths


def vsctl(*args: str, timeout: float = 30) -> str:
    return run(["ovs-vsctl", f"--timeout={int(timeout)}", *args], timeout=timeout + 5).stdout


def _pid(daemon: str) -> int | None:
    try:
        pid = int(open(f"{OVS_RUN}/{daemon}.pid").read().strip())
    except (OSError, ValueError):
        return None
    return pid if os.path.exists(f"/proc/{pid}") else None


def kernel_datapath_available() -> bool:
    if os.path.isdir("/sys/module/openvswitch"):
        return True
    return shutil.which("modprobe") is not None and run(
        ["modprobe", "-q", "openvswitch"], check=False).returncode == 0


def _state_path():
    return base_dir() / "ovs.json"


def _load() -> dict:
    try:
        return json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return {"started": {}, "clusters": []}


def _save(state: dict) -> None:
    tmp = _state_path().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(_state_path())


def _get_tso() -> str | None:
    done = run(["ovs-vsctl", "--timeout=5", "--if-exists", "get", "Open_vSwitch", ".", TSO_KEY], check=False)
    value = done.stdout.strip().strip('"')
    return value or None


def _get_external(key: str) -> str | None:
    done = run(["ovs-vsctl", "--timeout=5", "--if-exists", "get", "Open_vSwitch", ".", f"external_ids:{key}"],
               check=False)
    value = done.stdout.strip().strip('"')
    return value or None


def server_running() -> bool:
    return _pid("ovsdb-server") is not None


def _db_rows(table: str, columns: list[str]) -> list[dict]:
    """Rows of an OVS database table in OVSDB's JSON encoding: from the running server, or read
    from the database file when no server runs."""
    if server_running():
        done = run(["ovs-vsctl", "--timeout=5", "--format=json", f"--columns={','.join(columns)}", "list", table],
                   check=False)
        try:
            got = json.loads(done.stdout)
            return [dict(zip(got["headings"], row)) for row in got["data"]]
        except (ValueError, KeyError, TypeError):
            return []
    if shutil.which("ovsdb-tool") is None or not os.path.exists(DB_FILE):
        return []
    query = json.dumps(["Open_vSwitch", {"op": "select", "table": table, "where": [], "columns": columns}])
    done = run(["ovsdb-tool", "query", DB_FILE, query], check=False)
    try:
        return list(json.loads(done.stdout)[0]["rows"])
    except (ValueError, KeyError, IndexError, TypeError):
        return []


def _as_map(value) -> dict:
    return dict(value[1]) if isinstance(value, list) and len(value) == 2 and value[0] == "map" else {}


def bridges() -> list[tuple[str, str | None]]:
    """Every bridge in the OVS database, whoever made it, as (name, k8semu tag or None), whether
    or not OVS runs (a bridge left in the file comes back with the next ovs-vswitchd)."""
    found = []
    for row in _db_rows("Bridge", ["name", "external_ids"]):
        tag = _as_map(row.get("external_ids")).get(TAG_KEY)
        if isinstance(row.get("name"), str):
            found.append((row["name"], tag if isinstance(tag, str) else None))
    return sorted(found)


def tagged_bridges() -> list[tuple[str, str]]:
    """The bridges in the OVS database that carry a k8semu tag, as (name, tag)."""
    return [(name, tag) for name, tag in bridges() if tag is not None]


def setting_left_changed() -> bool:
    """Whether the database still holds a setting k8semu changed (with its old value beside it)."""
    return any(TSO_PREVIOUS in _as_map(row.get("external_ids")) for row in _db_rows("Open_vSwitch", ["external_ids"]))


def ensure_running(cluster: str | None = None) -> Datapath:
    """Start ovsdb-server and ovs-vswitchd when they are not running; say which datapath to use.
    With a cluster name, the cluster is counted as a user (``release`` undoes what was done).

    Raises:
        MissingToolError: Open vSwitch is not installed.
        RuntimeFailure: it would not start.
    """
    if shutil.which("ovs-vswitchd") is None:
        raise MissingToolError("ovs-vswitchd", "install Open vSwitch: sudo make install")
    kernel = kernel_datapath_available()
    with machine_lock():
        state = _load()
        if _pid("ovsdb-server") is None:
            # MONITOR=no: no monitor process that would restart the daemon; k8semu stops it by PID
            run([OVS_CTL, "--no-ovs-vswitchd", "--system-id=random", "start"], timeout=60,
                env=dict(os.environ, MONITOR="no"))
            pid = _pid("ovsdb-server")
            if pid:
                state["started"]["ovsdb-server"] = [pid, start_time(pid)]
        if _pid("ovs-vswitchd") is None:
            if not kernel and _get_external(TSO_PREVIOUS) is None:  # else a run that never ended set it
                previous = _get_tso() or UNSET
                run(["ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".", f"{TSO_KEY}=true",
                     f"external_ids:{TSO_PREVIOUS}=\"{previous}\""])
            os.makedirs("/var/log/openvswitch", exist_ok=True)
            # ovs-ctl would insist on loading the kernel module; start the daemon directly.
            run(["ovs-vswitchd", f"unix:{OVS_RUN}/db.sock", "-vconsole:emer", "-vsyslog:err",
                 "-vfile:info", "--no-chdir", "--log-file=/var/log/openvswitch/ovs-vswitchd.log",
                 f"--pidfile={OVS_RUN}/ovs-vswitchd.pid", "--detach"], timeout=60)
            pid = _pid("ovs-vswitchd")
            if pid:
                state["started"]["ovs-vswitchd"] = [pid, start_time(pid)]
        if cluster and cluster not in state["clusters"]:
            state["clusters"].append(cluster)
        _save(state)
    deadline = time.monotonic() + 20
    while run(["ovs-vsctl", "--timeout=2", "show"], check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeFailure("Open vSwitch did not answer within 20 s")
        time.sleep(0.1)
    if kernel:
        return Datapath("system", False)
    return Datapath("netdev", not (_get_tso() == "true" or "ovs-vswitchd" in state["started"]))


def relax_userspace_conntrack() -> None:
    """Turn off the userspace conntrack's TCP sequence check (OVS 3.1, netdev datapath), and
    write down that k8semu did, so that the last cluster's teardown turns it back on.

    With it on, about one closed connection in seven stayed ESTABLISHED in the connection table
    here (its FIN judged out of window), and a later connection reusing the client port was
    then dropped as invalid: measured as 1 s SYN retransmits and a ClusterIP connection rate
    cut by 80%. Off, it behaves like Linux conntrack with ``nf_conntrack_tcp_be_liberal=1``.
    The setting belongs to the userspace datapath, which exists once a netdev bridge does.
    """
    with machine_lock():
        state = _load()
        if "tcp_seq_was_enabled" not in state:
            now = run(["ovs-appctl", "dpctl/ct-get-tcp-seq-chk"], check=False).stdout
            state["tcp_seq_was_enabled"] = "enabled" in now
            _save(state)
        if state["tcp_seq_was_enabled"]:
            run(["ovs-appctl", "dpctl/ct-disable-tcp-seq-chk"], check=False)


def release(cluster: str) -> list[str]:
    """The cluster no longer uses OVS; when it was the last, undo what k8semu changed and stop
    the daemons it started. Returns what was restored, for the log."""
    done: list[str] = []
    with machine_lock():
        state = _load()
        state["clusters"] = [c for c in state["clusters"] if c != cluster]
        if state["clusters"]:
            _save(state)
            return done
        started = state.get("started", {})
        vswitchd_ours = "ovs-vswitchd" in started and alive(*started["ovs-vswitchd"])
        if state.get("tcp_seq_was_enabled") and _pid("ovs-vswitchd") and not vswitchd_ours:
            run(["ovs-appctl", "dpctl/ct-enable-tcp-seq-chk"], check=False)
            done.append("conntrack TCP sequence check re-enabled")
        previous = _get_external(TSO_PREVIOUS) if server_running() else None
        if previous is not None:
            key = ["--", "remove", "Open_vSwitch", ".", "external_ids", TSO_PREVIOUS]
            if previous != UNSET:
                run(["ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".", f"{TSO_KEY}={previous}", *key], check=False)
            else:
                run(["ovs-vsctl", "--no-wait", "remove", "Open_vSwitch", ".", "other_config",
                     "userspace-tso-enable", *key], check=False)
            done.append(f"{TSO_KEY} restored to {previous}")
        if "ovsdb-server" in started and alive(*started["ovsdb-server"]):
            # before it stops: the database file is a log that grows with every transaction (19 MB
            # after a day of tests made reading it offline take 0.8 s); compacting keeps its content
            run(["ovs-appctl", "-t", "ovsdb-server", "ovsdb-server/compact"], check=False, timeout=20)
        if vswitchd_ours:  # exit --cleanup: remove its datapaths (the netdev one leaves taps otherwise)
            run(["ovs-appctl", "-t", "ovs-vswitchd", "exit", "--cleanup"], check=False, timeout=20)
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            entry = started.get(daemon)
            if entry and signal_alive(*entry, signal.SIGTERM):
                deadline = time.monotonic() + 10
                while alive(*entry) and time.monotonic() < deadline:
                    time.sleep(0.02)
                signal_alive(*entry)
                done.append(f"{daemon} (pid {entry[0]}) stopped: k8semu had started it")
        _state_path().unlink(missing_ok=True)
    return done


def ensure_run_dir() -> None:
    """Open vSwitch's run directory, made as ovs-ctl makes it (root's, mode 0755) when OVS has
    not run since boot: the controller listens there, and starts before OVS does."""
    os.makedirs(OVS_RUN, mode=0o755, exist_ok=True)


def controller_socket(cluster: str) -> str:
    """Where a cluster's controller listens: OVS connects to Unix-socket controllers only in its
    own run directory (root-only; the socket itself is created mode 0600), so no other local
    user can take the controller's place or talk to the switches through it."""
    return f"{OVS_RUN}/k8semu-{cluster}.ofp"


def bridge_args(name: str, dpid: int, datapath: str, controller: str, tag: str) -> list[str]:
    """ovs-vsctl arguments that create a bridge held by our controller only, tagged as ours.

    No ``--may-exist``: an existing bridge of that name is someone else's, and the whole
    transaction fails rather than adopt it. ``fail_mode=secure``: if the controller goes away
    the switch keeps its flows and never falls back to standalone learning (no NORMAL action).
    ``controller`` is a ``unix:`` socket in the cluster's run directory: no TCP port any local
    user could listen on or connect to.
    """
    return ["--", "add-br", name,
            "--", "set", "bridge", name, f"datapath_type={datapath}", "fail_mode=secure",
            "protocols=OpenFlow13", f"other-config:datapath-id={dpid:016x}",
            "other-config:disable-in-band=true", f"external_ids:k8semu=\"{tag}\"",
            "--", "set-controller", name, controller,
            "--", "set", "controller", name, "connection_mode=out-of-band",
            "max_backoff=1000", "inactivity_probe=0"]


def port_args(bridge: str, port: str, ofport: int) -> list[str]:
    return ["--", "--may-exist", "add-port", bridge, port,
            "--", "set", "interface", port, f"ofport_request={ofport}"]


def internal_port_args(bridge: str, port: str, ofport: int, tag: str) -> list[str]:
    """A new internal port (a tap on the netdev datapath) tagged with the run's tag; no
    ``--may-exist``: a port of that name anywhere fails the transaction rather than be adopted."""
    return ["--", "add-port", bridge, port,
            "--", "set", "interface", port, "type=internal", f"ofport_request={ofport}",
            f"external_ids:k8semu=\"{tag}\""]


def del_bridge_args(name: str) -> list[str]:
    return ["--", "--if-exists", "del-br", name]


def ct_flush(bridge: str, zone: int, orig_tuple: str) -> None:
    """Flush the conntrack entries of ``zone`` whose original tuple matches (OVS >= 3.1's
    NXT_CT_FLUSH, partial tuples allowed); nothing to flush is no error."""
    run(["ovs-ofctl", "-O", "OpenFlow13", "ct-flush", bridge, f"zone={zone}", orig_tuple], check=False)


def batch(args: list[str], timeout: float = 60) -> None:
    """One ovs-vsctl transaction for many operations (``--`` separated)."""
    if args:
        vsctl(*args[1:] if args[0] == "--" else args, timeout=timeout)
