"""When probes run: kubelet's prober workers tick every periodSeconds from the pod's admission,
a container's first readiness probe runs as soon as it is running, and the ones after it on the
worker's next tick (runtime/probes.py)."""
from __future__ import annotations

import time
from types import SimpleNamespace

from emulator.model.pod import Container, Probe
from emulator.runtime.probes import ProbeState, Probes, next_tick


def state(period: int, anchor: float) -> ProbeState:
    return ProbeState(Probe("exec", command=("true",), period=period), "readiness", anchor, ["true"], "c",
                      anchor=anchor)


def test_the_next_tick_counts_periods_from_the_anchor() -> None:
    st = state(period=10, anchor=100.0)
    assert next_tick(st, 100.0) == 100.0
    assert next_tick(st, 100.0, after=True) == 110.0
    assert next_tick(st, 103.5) == 110.0
    assert next_tick(st, 103.5, after=True) == 110.0
    assert next_tick(st, 110.0, after=True) == 120.0
    assert next_tick(st, 125.0) == 130.0


def pod(admitted_ago: float, readiness: Probe | None = None, liveness: Probe | None = None):
    container = Container("c", "busybox", readiness=readiness, liveness=liveness)
    obj = SimpleNamespace(key="default/p", spec=SimpleNamespace(containers=[container]))
    return SimpleNamespace(obj=obj, status=SimpleNamespace(start_time=time.time() - admitted_ago, ip="10.244.0.2"))


def test_a_readiness_probe_runs_at_start_then_on_the_tick_of_the_pods_admission() -> None:
    """Admitted 0.6 s before the container started, period 1: the first probe runs at once and
    the next one 0.4 s later (not 1 s after the first)."""
    probes = Probes()
    ready = probes.start(pod(0.6, readiness=Probe("exec", command=("true",), period=1)), "c", "")
    st = probes.states[("default/p", "c", "readiness")]
    now = time.monotonic()
    assert ready is False
    assert st.next_run <= now  # due now
    assert abs(next_tick(st, now, after=True) - (now + 0.4)) < 0.05


def test_initial_delay_and_liveness_wait_for_a_tick() -> None:
    """Admitted 1 s before the container started: a readiness probe with initialDelaySeconds 2
    and period 3 first runs on the first tick past the delay (3 s after admission); a liveness
    probe without a delay, period 5, on its next tick (5 s after admission: kubelet triggers
    only readiness at start)."""
    probes = Probes()
    probes.start(pod(1.0, readiness=Probe("exec", command=("true",), period=3, initial_delay=2),
                     liveness=Probe("exec", command=("true",), period=5)), "c", "")
    now = time.monotonic()
    readiness = probes.states[("default/p", "c", "readiness")]
    liveness = probes.states[("default/p", "c", "liveness")]
    assert abs(readiness.next_run - (now + 2.0)) < 0.05  # admission + 3 s
    assert abs(liveness.next_run - (now + 4.0)) < 0.05  # admission + 5 s
