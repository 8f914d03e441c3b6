"""Bringing clusters up and down: the CLI side of the manager's life.

``up`` validates everything first (nothing is created for a bad spec), refuses a cluster name
that is already running, allocates the cluster a slot and writes its records under the machine
lock, starts the manager in its own session and waits, polling with a deadline, until every pod
runs and the data plane holds the current state. Several clusters may run side by side (as kind
allows); every verb names one with ``--cluster``, or finds the only one. ``cleanup`` works from
the records and tags alone.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

import yaml

from emulator.api import kubeconfig
from emulator.client.client import Client
from emulator.errors import ClusterRunningError, K8semuError, NoClusterError, RuntimeFailure
from emulator.model.cluster import ClusterConfig
from emulator.runtime import cleanup, ovs
from emulator.runtime.proc import alive
from emulator.runtime.records import KINDS, Records, all_records, allocate_slot, cluster_dir, machine_lock


def manager_entry(records: Records) -> tuple[int, int | None] | None:
    return records.manager()


def live(records: Records) -> bool:
    entry = manager_entry(records)
    return bool(entry and alive(*entry))


def resolve(cluster: str | None) -> Path:
    """The run directory of the cluster a verb acts on: the one named, or the only one there is.

    Raises:
        NoClusterError: none is running (or the named one is not).
        K8semuError: several are and none was named.
    """
    if cluster:
        path = cluster_dir(cluster)
        if Records.load(path) is None:
            raise NoClusterError(f"no cluster named {cluster!r} is running")
        return path
    found = all_records()
    if not found:
        raise NoClusterError("no cluster is running (start one with: sudo k8semu up SPEC)")
    if len(found) > 1:
        names = ", ".join(r.cluster for r in found)
        raise K8semuError(f"several clusters are running ({names}); name one with --cluster NAME")
    return found[0].path.parent


def check_manager(run: Path) -> Records:
    """The records of a cluster whose manager is alive.

    Raises:
        NoClusterError: the manager is dead (its leftovers need ``cleanup``).
    """
    records = Records.load(run)
    if records is None:
        raise NoClusterError("no cluster is running")
    if not live(records):
        entry = manager_entry(records)
        raise NoClusterError(f"cluster {records.cluster!r}: its manager (pid {entry[0] if entry else '?'}) is not "
                             f"running and its leftovers are still on this machine; remove them with "
                             f"'sudo k8semu cleanup --cluster {records.cluster}'")
    return records


UP_POLL = 0.02  # the controller reads new views as often; a status request costs the manager ~1 ms


def up(config: ClusterConfig, spec_path: str, timeout: float, out: TextIO, base: Path | None = None,
       progress: Callable[[dict | None], None] | None = None) -> dict:
    """Start the manager for ``config`` and wait until the cluster is ready; ``progress`` hears
    of each wait: None while the nodes and switches are made, then each status read.

    Raises:
        ClusterRunningError: a cluster of that name is up (or its leftovers are there).
        RuntimeFailure: the manager failed or the cluster was not ready in time.
    """
    run = cluster_dir(config.name)
    with machine_lock():
        old = Records.load(run)
        if old is not None and not live(old) and not any(old.items(k) for k in KINDS):
            old = None  # a run that failed and removed everything it made: nothing is left
        if old is not None:
            if live(old):
                raise ClusterRunningError(f"cluster {config.name!r} is already running (manager pid "
                                          f"{manager_entry(old)[0]}); run 'k8semu down --cluster {config.name}' first")
            raise ClusterRunningError(f"leftovers of cluster {config.name!r} from a run that did not end cleanly; "
                                      f"run 'sudo k8semu cleanup --cluster {config.name}'")
        known = {r.tag for r in all_records()}
        in_db = ovs.bridges()  # one read: offline it replays the database file
        orphans = sorted({tag.split(":")[1] if tag.count(":") == 2 else tag
                          for _, tag in in_db if tag is not None and tag not in known})
        if orphans:
            out.write(f"warning: the Open vSwitch database holds bridges of runs that never ended (cluster "
                      f"{', '.join(orphans)}; the machine restarted?); they keep their names: "
                      f"'sudo k8semu cleanup' removes them\n")
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(mode=0o700, parents=True)
        Records.create(run, config.name, allocate_slot(config.name, busy=[name for name, _ in in_db]))
    started = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if sys.version_info < (3, 12):
        # Mininet imports distutils: the standard library's takes 3 ms, setuptools' shim (its
        # default) 140 ms of every start-up
        env.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")
    argv = [sys.executable, "-m", "emulator.api", str(run), os.path.abspath(spec_path)]
    if base is not None:
        argv.append(str(base))
    with open(run / "manager.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
    deadline = started + timeout
    status: dict = {}
    client = Client(run, timeout=30)
    while time.monotonic() < deadline:
        if progress is not None and not status:
            progress(None)
        if proc.poll() is not None:
            error, log_path = run / "error.txt", run / "manager.log"
            if error.exists():
                message = error.read_text()
            elif log_path.exists():
                message = log_path.read_text()[-3000:]
            else:  # 'k8semu down' from another shell removed the run directory
                message = "it was taken down while starting ('k8semu down' or 'k8semu cleanup')"
            shutil.rmtree(run, ignore_errors=True)
            raise RuntimeFailure(f"cluster {config.name!r} failed to start: {message.strip()}")
        if (run / "ready").exists():
            try:
                status = client.status()
            except NoClusterError:  # it is exiting: the next pass reads why
                time.sleep(0.05)
                continue
            status["seconds"] = time.monotonic() - started
            if progress is not None:
                progress(status)
            if status["synced"] and status["running"] == status["pods"]:
                try:
                    status["kubeconfig"] = str(merge_kubeconfig(run, config.name))
                except (OSError, K8semuError) as exc:  # as kind does: no half-made cluster stays
                    down(config.name)
                    raise RuntimeFailure(f"cluster {config.name!r} was taken down: its context could not "
                                         f"be written into the kubeconfig ({exc})") from None
                return status
        time.sleep(UP_POLL)
    raise RuntimeFailure(f"cluster {config.name!r} not ready after {timeout:.0f}s "
                         f"({status.get('running', 0)}/{status.get('pods', '?')} pods running); "
                         f"it is still up: inspect with 'k8semu get pods -A', remove with "
                         f"'k8semu down --cluster {config.name}'")


def merge_kubeconfig(run: Path, cluster: str) -> Path:
    """Merge the cluster's context into the user's kubeconfig (as kind does) and remember
    where, so that ``down`` and ``cleanup`` take it out of that file."""
    path, uid, gid = kubeconfig.target()
    (run / "kubeconfig.target").write_text(str(path))
    kubeconfig.merge(yaml.safe_load((run / "kubeconfig").read_text()), path, uid, gid)
    return path


def unmerge_kubeconfig(run: Path, cluster: str) -> None:
    target = run / "kubeconfig.target"
    if target.exists():
        kubeconfig.remove(cluster, Path(target.read_text()))


def kubeconfig_text(cluster: str | None) -> str:
    """The admin kubeconfig of the running cluster (``k8semu kubeconfig``)."""
    run = resolve(cluster)
    path = run / "kubeconfig"
    if not path.exists():
        raise NoClusterError("the cluster's API server has not started yet")
    return path.read_text()


def down(cluster: str | None = None, timeout: float = 120) -> str:
    """Ask the manager to tear the cluster down and wait until it has.

    Raises:
        NoClusterError: nothing is running, or its manager is dead (then: cleanup).
    """
    run = resolve(cluster)
    records = check_manager(run)
    entry = manager_entry(records)
    unmerge_kubeconfig(run, records.cluster)
    try:
        Client(run).down()
    except K8semuError:
        os.kill(entry[0], 15)
    deadline = time.monotonic() + timeout
    while alive(*entry):
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"cluster {records.cluster!r} did not stop within {timeout}s; "
                                 f"run 'sudo k8semu cleanup --cluster {records.cluster}'")
        time.sleep(0.05)
    if Records.load(run) is not None:  # it exited before its teardown finished: say why, finish it
        why = _last_words(run)
        notes = cleanup_cluster(run)
        raise RuntimeFailure(f"cluster {records.cluster!r}: its manager exited before its teardown finished"
                             f"{': ' + why if why else ''}; cleanup removed the rest ({notes.splitlines()[0]})")
    return f"cluster {records.cluster!r} is down"


def _last_words(run: Path) -> str:
    """The manager's error, or the last line of its log, for a teardown it did not finish."""
    for name in ("error.txt", "manager.log"):
        try:
            lines = [line for line in (run / name).read_text().splitlines() if line.strip()]
        except OSError:
            continue
        if lines:
            return lines[-1][:500]
    return ""


def cleanup_cluster(run: Path) -> str:
    records = Records.load(run)
    if records is None:
        shutil.rmtree(run, ignore_errors=True)
        return f"nothing to clean up in {run}"
    entry = manager_entry(records)
    unmerge_kubeconfig(run, records.cluster)
    if entry:
        cleanup.stop_manager(*entry)
    records = Records.load(run) or records
    counts = {"processes": len(records.items("processes")), "netns": len(records.items("netns")),
              "links": len(records.items("links")), "ovs bridges": len(records.items("ovs_bridges"))}
    notes = cleanup.teardown(records, keep_self=False)
    shutil.rmtree(run, ignore_errors=True)
    text = ("removed " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" of cluster {records.cluster!r}")
    return "\n".join([text] + notes)


def cleanup_all(cluster: str | None = None) -> str:
    """Remove every leftover that the records and tags name (after a crash or ``kill -9``):
    of the named cluster, or of every cluster whose manager is dead."""
    if cluster:
        return cleanup_cluster(cluster_dir(cluster))
    targets = [r for r in all_records() if not live(r)]
    texts = [cleanup_cluster(r.path.parent) for r in targets]
    # no machine lock needed (OVS takes it itself): a new run's tag is never an orphan's
    texts += cleanup.remove_orphans({r.tag for r in all_records()})
    return "\n".join(texts) or "nothing to clean up"


def status_text(cluster: str | None) -> str:
    run = resolve(cluster)
    check_manager(run)
    s = Client(run).status()
    parts = []
    for name, h in s["helpers"].items():
        state = f"running (pid {h['pid']})" if h["running"] else ("stopped" if h["held"] else "down")
        parts.append(f"{name} {state}" + (f" (restarted {h['restarts']}x)" if h["restarts"] else ""))
    helpers = ", ".join(parts)
    behind = "".join(f"routes behind on {node}: {what}\n" for node, what in sorted(s.get("routes_behind", {}).items()))
    return (f"cluster {s['cluster']} ({s['file']}): {s['phase']}, manager pid {s['pid']}, slot {s['slot']}\n"
            f"nodes: {', '.join(s['nodes'])}\n"
            f"pods: {s['running']}/{s['pods']} running and ready"
            + (f", {s['completed']} completed" if s.get("completed") else "") + "; data plane "
            + (f"cni {s['cni']}, kube-proxy {s['kubeProxy']}, " if s.get("kubeProxy") else "")
            + f"{'in sync' if s['synced'] else 'syncing'} (generation {s['generation']})\n"
            f"helpers: {helpers}\n" + behind
            + (f"stopped (k8semu fault): {', '.join(s['stopped'])}\n" if s.get("stopped") else "") +
            f"run directory: {s['run']}\n")


def stop_starting(config: ClusterConfig, timeout: float = 30) -> str:
    """Ctrl-C (or SIGTERM/SIGHUP) during ``up``: let the manager finish or fail its start-up,
    then take it down."""
    run = cluster_dir(config.name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (run / "ready").exists():
        records = Records.load(run)
        if records is None or (manager_entry(records) and not live(records)):
            break
        time.sleep(0.05)
    try:
        return down(config.name)
    except NoClusterError:
        return cleanup_all(config.name) if Records.load(run) else f"cluster {config.name!r} is down"
