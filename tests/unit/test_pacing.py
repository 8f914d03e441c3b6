"""The manager loop's pacing (runtime/pacing.py): it wakes for the next due probe and for a
probe's exit, and never ticks more than a fifth of the time."""
from __future__ import annotations

import subprocess
import threading
import time

from emulator.model.pod import Probe
from emulator.runtime.pacing import DUTY, ExitWatch, Pacer
from emulator.runtime.probes import Probes
from tests.unit.test_probes import pod


def test_the_wait_is_a_tick_or_idle_tick_without_a_due_probe() -> None:
    pacer = Pacer(0.05, 0.2)
    pacer.begin(), pacer.end()
    assert 0.049 < pacer.timeout(quiet=False, due=None) <= 0.05
    assert 0.19 < pacer.timeout(quiet=True, due=None) <= 0.2


def test_a_due_probe_shortens_the_wait() -> None:
    pacer = Pacer(0.05, 0.2)
    pacer.begin(), pacer.end()
    assert pacer.timeout(quiet=True, due=time.monotonic() + 0.01) <= 0.01
    assert pacer.timeout(quiet=False, due=time.monotonic() + 0.3) > 0.04  # later than a tick: the tick


def test_a_costly_tick_keeps_the_loop_under_its_duty_bound() -> None:
    """A tick that took 30 ms: the next may start 150 ms after it began, however soon a probe
    is due."""
    pacer = Pacer(0.05, 0.2)
    pacer.started, pacer.cost = time.monotonic(), 0.03
    assert abs(pacer.not_before() - (pacer.started + 0.03 / DUTY)) < 1e-9
    assert pacer.timeout(quiet=True, due=time.monotonic()) > 0.14


def test_next_due_is_the_earliest_probe_not_running() -> None:
    probes = Probes()
    assert probes.next_due() is None
    probes.start(pod(0.6, readiness=Probe("exec", command=("true",), period=1)), "c", "")
    st = probes.states[("default/p", "c", "readiness")]
    assert probes.next_due() == st.next_run


def test_a_watched_process_exit_is_reported_without_reaping_it() -> None:
    woke = threading.Event()
    watch = ExitWatch(woke.set, lambda: 0.0)
    assert watch.available  # Linux >= 5.3 with Python >= 3.9 (this machine's)
    proc = subprocess.Popen(["sleep", "0.2"])
    watch.watch(proc.pid)
    assert not woke.wait(0.1)
    assert woke.wait(5), "the exit was not reported"
    assert proc.poll() == 0  # still ours to reap: its status is intact


def test_exits_wait_for_the_duty_bound() -> None:
    woke = threading.Event()
    not_before = time.monotonic() + 0.3
    watch = ExitWatch(woke.set, lambda: not_before)
    proc = subprocess.Popen(["true"])
    watch.watch(proc.pid)
    assert woke.wait(5)
    assert time.monotonic() >= not_before
    proc.wait()
