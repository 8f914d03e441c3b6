"""The manager process from start to end: admit the spec, run the ``prepare`` steps, bring the
cluster up, start the services (the API server), serve until asked to stop, and always tear
down what was made, even after a failure (then ``error.txt`` says why for ``up`` to print).

``python -m emulator.api`` runs it with the API server; ``python -m emulator.runtime.lifetime``
without one.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from emulator.cluster.admit import admit_cluster
from emulator.errors import K8semuError
from emulator.runtime import cleanup
from emulator.runtime.manager import Manager
from emulator.runtime.records import Records

SWITCH_INTERVAL = 0.001  # seconds a thread runs before another waiting for the GIL gets it (Python: 0.005)


def _stop_services(stops: list[Callable[[], None]]) -> None:
    """Stop each service; one that fails is reported and the teardown goes on regardless."""
    for stop in stops:
        try:
            stop()
        except Exception as exc:  # noqa: BLE001 - the cluster must still be torn down
            print(f"[ERROR] stopping a service failed: {exc!r}", flush=True)


def main(argv: list[str], services: Sequence[Callable[[Manager], Callable[[], None]]] = (),
         prepare: Sequence[Callable[[Manager], None]] = ()) -> int:
    """The manager process: run ``prepare`` (before any pod exists: the API's certificates,
    which pods get), bring the cluster up, start ``services`` (each returns its stop function;
    the API server is one), serve until asked to stop, tear down."""
    run = Path(argv[0])
    # The loop's pass and the API's threads share one interpreter: a thread woken to hand a
    # watcher its event waits for the running one to let go of the GIL, after 5 ms by default,
    # once per hop (loop, queue, socket). 1 ms keeps a watch event within a few ms of its change.
    sys.setswitchinterval(SWITCH_INTERVAL)
    stops: list[Callable[[], None]] = []
    records = Records.load(run)
    manager = None
    if records is None:
        (run / "error.txt").write_text("the cluster's records are missing")
        return 1
    try:
        config = admit_cluster(argv[1], Path(argv[2]) if len(argv) > 2 else None)
        manager = Manager(config, records)
        signal.signal(signal.SIGTERM, lambda *_: (manager.stopping.set(), manager.wake.set()))
        signal.signal(signal.SIGINT, lambda *_: (manager.stopping.set(), manager.wake.set()))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for step in prepare:
            step(manager)
        manager.start()
        stops = [start(manager) for start in services]
        manager.serve()
    except BaseException as exc:  # noqa: B902 - always tear down, then report
        message = str(exc) if isinstance(exc, K8semuError) else traceback.format_exc()
        log = run / "controller.log"
        if log.exists() and "controller" in message:
            message += "\ncontroller.log (last lines):\n" + "\n".join(log.read_text().splitlines()[-15:])
        (run / "error.txt").write_text(message)
        _stop_services(stops)
        if manager:
            manager.shutdown()
        else:
            cleanup.teardown(records)
        end_own_children()
        return 1
    _stop_services(stops)
    for note in manager.shutdown():
        print(f"[INFO] {note}", flush=True)
    end_own_children()
    shutil.rmtree(run, ignore_errors=True)  # everything it made is gone; so is the record
    return 0


def end_own_children() -> None:
    """Short-lived helpers still running (a probe's curl, an arping) are in our process group,
    which we lead: signal the group, ignoring the signal ourselves."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(os.getpgid(0), signal.SIGTERM)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
