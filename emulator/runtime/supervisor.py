"""Supervision of the manager's long-lived helpers (the SDN controller, external DNS servers):
a helper that exits is started again after a back-off (0 s, then 1 s doubling to 30 s, reset
after it has run for 10 s: a helper that dies on start-up backs off, one killed now and then
after it had long done its work, as a fault test does, comes back at once), and each restart is reported (an Event and the log), so a dead
controller heals instead of leaving the data plane frozen. A helper stopped on purpose (a
scenario's ``controller-stop`` fault) stays stopped until it is started again.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from emulator.runtime.proc import start_time, stop_all
from emulator.runtime.records import Records

BACKOFF_MAX = 30.0
HEALTHY_AFTER = 10.0  # a controller syncs 50 nodes in less; a crash loop dies sooner


@dataclass
class Helper:
    name: str
    launch: Callable[[], subprocess.Popen]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    restarts: int = 0
    not_before: float = 0.0
    held: bool = False  # stopped on purpose


@dataclass
class Supervisor:
    records: Records
    report: Callable[[str, str], None] = lambda name, message: None  # (helper, message)
    helpers: dict[str, Helper] = field(default_factory=dict)

    def add(self, name: str, launch: Callable[[], subprocess.Popen]) -> Helper:
        helper = Helper(name, launch)
        self.helpers[name] = helper
        self._start(helper)
        return helper

    def _start(self, helper: Helper) -> None:
        helper.proc = helper.launch()
        helper.started = time.monotonic()
        self.records.add("processes", [helper.proc.pid, start_time(helper.proc.pid), helper.name])

    def _forget(self, helper: Helper) -> None:
        if helper.proc is not None:
            self.records.discard("processes", *[p for p in self.records.items("processes")
                                                if p[0] == helper.proc.pid])

    def check(self) -> list[str]:
        """Restart helpers that died (after their back-off); returns those restarted."""
        restarted = []
        now = time.monotonic()
        for helper in self.helpers.values():
            if helper.held or helper.proc is None:
                continue
            code = helper.proc.poll()
            if code is None:
                if helper.failures and now - helper.started > HEALTHY_AFTER:
                    helper.failures = 0
                continue
            if not helper.not_before:
                self._forget(helper)
                helper.failures += 1
                delay = 0.0 if helper.failures == 1 else min(BACKOFF_MAX, 2.0 ** (helper.failures - 2))
                helper.not_before = now + delay
                self.report(helper.name, f"{helper.name} (pid {helper.proc.pid}) exited with status {code}; "
                                         f"restarting in {delay:g}s")
            if now >= helper.not_before:
                helper.not_before = 0.0
                helper.restarts += 1
                self._start(helper)
                restarted.append(helper.name)
        return restarted

    def hold(self, name: str) -> str:
        """Stop a helper on purpose (a fault); it stays down until ``release``."""
        helper = self.helpers[name]
        helper.held = True
        if helper.proc is not None:
            stop_all([(helper.proc.pid, start_time(helper.proc.pid))])
            helper.proc.poll()
            self._forget(helper)
        return f"{name} stopped (pid {helper.proc.pid if helper.proc else '?'})"

    def release(self, name: str) -> None:
        helper = self.helpers[name]
        helper.held = False
        if helper.proc is None or helper.proc.poll() is not None:
            self._start(helper)

    def stop_all(self) -> None:
        procs = [h.proc for h in self.helpers.values() if h.proc is not None]
        stop_all([(p.pid, start_time(p.pid)) for p in procs if p.poll() is None])
        for p in procs:
            p.poll()
