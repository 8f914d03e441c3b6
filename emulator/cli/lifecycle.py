"""Bringing a cluster up and down: the CLI side of the manager's life.

``up`` validates everything first (nothing is created for a bad spec), refuses a second cluster,
starts the manager in its own session and waits, polling with a deadline, until every pod runs
and every switch holds the current flows. ``cleanup`` works from the records alone.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from emulator.errors import ClusterRunningError, K8semuError, NoClusterError, RuntimeFailure
from emulator.model.cluster import ClusterConfig
from emulator.runtime import api, cleanup
from emulator.runtime.proc import alive
from emulator.runtime.records import Records, run_dir


def manager_entry(records: Records) -> tuple[int, int | None] | None:
    for pid, started, what in records.items("processes"):
        if what == "manager":
            return pid, started
    return None


def check_not_running(run: Path) -> None:
    """Raises ClusterRunningError if a cluster (or the wreck of one) is there."""
    records = Records.load(run)
    if records is None:
        return
    entry = manager_entry(records)
    if entry and alive(*entry):
        raise ClusterRunningError(f"cluster {records.data.get('cluster')!r} is already running "
                                  f"(manager pid {entry[0]}); run 'k8semu down' first")
    if any(records.items(k) for k in ("netns", "links", "ovs_bridges", "processes")):
        raise ClusterRunningError(f"leftovers of cluster {records.data.get('cluster')!r} from a "
                                  "run that did not end cleanly; run 'sudo k8semu cleanup'")


def up(config: ClusterConfig, spec_path: str, timeout: float, out: TextIO) -> dict:
    """Start the manager for ``config`` and wait until the cluster is ready.

    Raises:
        ClusterRunningError: a cluster is already up.
        RuntimeFailure: the manager failed or the cluster was not ready in time.
    """
    run = run_dir()
    check_not_running(run)
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    os.chmod(run, 0o700)
    started = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "emulator.runtime.manager", os.path.abspath(spec_path)],
                            stdin=subprocess.DEVNULL, stdout=open(run / "manager.log", "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = started + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            error = run / "error.txt"
            message = error.read_text() if error.exists() else (run / "manager.log").read_text()[-3000:]
            shutil.rmtree(run, ignore_errors=True)
            raise RuntimeFailure(f"cluster {config.name!r} failed to start: {message.strip()}")
        if (run / "ready").exists():
            status = api.call(run, "status")
            if status["synced"] and status["running"] == status["pods"]:
                status["seconds"] = time.monotonic() - started
                return status
        time.sleep(0.05)
    raise RuntimeFailure(f"cluster {config.name!r} not ready after {timeout:.0f}s "
                         f"({status.get('running', 0)}/{status.get('pods', '?')} pods running); "
                         "it is still up: inspect with 'k8semu get pods -A', remove with 'k8semu down'")


def down(timeout: float = 120) -> str:
    """Ask the manager to tear the cluster down and wait until it has.

    Raises:
        NoClusterError: nothing is running.
    """
    run = run_dir()
    records = Records.load(run)
    if records is None:
        raise NoClusterError("no cluster is running")
    name = records.data.get("cluster")
    entry = manager_entry(records)
    if entry is None or not alive(*entry):
        raise NoClusterError(f"cluster {name!r} has no live manager; run 'sudo k8semu cleanup'")
    try:
        api.call(run, "down", timeout=10)
    except K8semuError:
        os.kill(entry[0], 15)
    deadline = time.monotonic() + timeout
    while alive(*entry):
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"cluster {name!r} did not stop within {timeout}s; "
                                 "run 'sudo k8semu cleanup'")
        time.sleep(0.05)
    return f"cluster {name!r} is down"


def cleanup_all() -> str:
    """Remove every leftover that the records name (after a crash or ``kill -9``)."""
    run = run_dir()
    records = Records.load(run)
    if records is None:
        shutil.rmtree(run, ignore_errors=True)
        return "nothing to clean up"
    entry = manager_entry(records)
    if entry:
        cleanup.stop_manager(*entry)
    records = Records.load(run) or records
    counts = {k: len(records.items(k)) for k in ("processes", "netns", "links", "ovs_bridges")}
    cleanup.teardown(records, keep_self=False)
    shutil.rmtree(run, ignore_errors=True)
    return ("removed " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
            + f" of cluster {records.data.get('cluster')!r}")


def stop_starting(timeout: float = 30) -> str:
    """Ctrl-C during ``up``: let the manager finish or fail its start-up, then take it down."""
    run = run_dir()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (run / "ready").exists():
        records = Records.load(run)
        entry = manager_entry(records) if records else None
        if entry is None and records is not None or (entry and not alive(*entry)):
            break
        time.sleep(0.05)
    try:
        return down()
    except NoClusterError:
        return cleanup_all()
