"""Readiness and liveness probes, run the way kubelet runs them.

httpGet and tcpSocket probes connect from the node (kubelet lives in the node's namespace) to
the pod IP; exec probes run inside the container, started by the shim like any container
process (its namespaces, cgroups and capabilities), their exit status delivered by the kubelet.
Each probe is a short-lived process started without blocking and collected on a later tick, so
one slow probe never holds up the kubelet; the manager's loop wakes when a probe falls due and
when a network probe's process exits (``watch``), so results are not a tick late. Success/failure thresholds, initial delay, period and
timeout follow the pod spec.

When a probe runs follows kubelet's prober workers: a pod's workers start when the kubelet
admits it (its ``startTime``) and each then ticks every ``periodSeconds`` from there, across
container restarts; a container's first readiness probe runs as soon as it is running (kubelet
triggers it when the container has no result yet), and every later probe, and every liveness
probe, on the next tick of its worker that is past ``initialDelaySeconds``. A container that
needs a moment to listen is therefore ready within one period of its start, not a full period
after its first (failed) probe.
"""
from __future__ import annotations

import math
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from emulator.model.pod import Container, Probe
from emulator.runtime.proc import signal_alive

ExecStart = Callable[[str, str, list[str]], "tuple[int, int | None] | None"]  # (pod key, container, argv)


@dataclass
class Handle:
    """A running probe: a Popen (network probes) or a shim-started process (exec probes)."""
    popen: subprocess.Popen | None = None
    pid: int = 0
    start: int | None = None
    code: int | None = None  # exec probes: set when the shim reports the exit

    def poll(self) -> int | None:
        return self.popen.poll() if self.popen else self.code

    def kill(self) -> None:
        if self.popen:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait()
        elif self.code is None:
            signal_alive(self.pid, self.start)

    def output(self) -> str:
        if self.popen and self.popen.stdout and not self.popen.stdout.closed:
            text = self.popen.stdout.read().strip()
            self.popen.stdout.close()
            return text
        return ""


@dataclass
class ProbeState:
    probe: Probe
    kind: str  # readiness | liveness
    started: float
    argv: list[str]
    container: str
    anchor: float = 0.0  # when the pod's workers started (monotonic): ticks are anchor + k * period
    next_run: float = 0.0
    handle: Handle | None = None
    deadline: float = 0.0
    successes: int = 0
    failures: int = 0
    passing: bool = False


def network_probe_argv(probe: Probe, container: Container, pod_ip: str, node_netns: str) -> list[str]:
    port = container.port_number(probe.port) or 0
    on_node = ["ip", "netns", "exec", node_netns]
    if probe.action == "tcpSocket":
        return on_node + ["nc", "-z", "-w", str(probe.timeout), pod_ip, str(port)]
    scheme = probe.scheme.lower()
    return on_node + ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-m", str(probe.timeout),
                      f"{scheme}://{pod_ip}:{port}{probe.path}"]


def failure_message(probe: Probe, code: int | None, out: str) -> str:
    """What the kubelet says of a failed probe (after "Readiness probe failed: ")."""
    if code is None:
        return f"command timed out after {probe.timeout}s" if probe.action == "exec" else \
            f"the {probe.action} check timed out after {probe.timeout}s"
    if probe.action == "httpGet":
        return f"HTTP probe failed with statuscode: {out}" if out.isdigit() and out != "000" else \
            f"Get \"{probe.scheme.lower()}://...:{probe.port}{probe.path}\": the connection failed"
    if probe.action == "tcpSocket":
        return f"dial tcp port {probe.port}: the connection failed"
    return out


def next_tick(st: ProbeState, at: float, after: bool = False) -> float:
    """The first tick of ``st``'s worker at ``at`` or later (strictly later with ``after``)."""
    period = max(st.probe.period, 1)
    ticks = math.ceil((at - st.anchor - 0.001) / period)  # within a millisecond of a tick is on it
    tick = st.anchor + ticks * period
    return tick + period if after and tick <= at else tick


@dataclass
class Probes:
    exec_start: ExecStart | None = None
    watch: Callable[[int], None] | None = None  # told each network probe's PID (to wake on its exit)
    states: dict[tuple[str, str, str], ProbeState] = field(default_factory=dict)
    by_pid: dict[int, Handle] = field(default_factory=dict)  # exec probes waiting for their exit
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # readiness failures not yet taken

    def start(self, rec, name: str, node_netns: str) -> bool:
        """Register a freshly started container's probes; returns its initial readiness."""
        pod = rec.obj
        container = next(c for c in pod.spec.containers if c.name == name)
        self.forget(pod.key, name)
        now = time.monotonic()
        admitted = rec.status.start_time or time.time()
        anchor = min(now, now - (time.time() - admitted))  # the wall-clock startTime, on this clock
        for kind, probe in (("readiness", container.readiness), ("liveness", container.liveness)):
            if probe is not None:
                argv = list(probe.command) if probe.action == "exec" else \
                    network_probe_argv(probe, container, rec.status.ip, node_netns)
                st = ProbeState(probe, kind, now, argv, name, anchor=anchor)
                due = now + probe.initial_delay
                st.next_run = due if kind == "readiness" and probe.initial_delay == 0 else next_tick(st, due)
                self.states[(pod.key, name, kind)] = st
        return container.readiness is None

    def forget_kind(self, pod_key: str, container: str, kind: str) -> None:
        """Stop one kind of probe (a terminating pod's liveness) and keep the others."""
        st = self.states.pop((pod_key, container, kind), None)
        if st is not None and st.handle:
            st.handle.kill()
            self.by_pid.pop(st.handle.pid, None)

    def forget(self, pod_key: str, container: str | None = None) -> None:
        for key in [k for k in self.states if k[0] == pod_key and (container is None or k[1] == container)]:
            st = self.states.pop(key)
            if st.handle:
                st.handle.kill()
                self.by_pid.pop(st.handle.pid, None)

    def deliver(self, pid: int, code: int) -> bool:
        """An exit the shim reported: True if it was an exec probe's."""
        handle = self.by_pid.pop(pid, None)
        if handle is None:
            return False
        handle.code = code
        return True

    def _launch(self, pod: str, st: ProbeState) -> Handle | None:
        if st.probe.action != "exec":
            popen = subprocess.Popen(st.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
            if self.watch is not None:
                self.watch(popen.pid)
            return Handle(popen)
        started = self.exec_start(pod, st.container, st.argv) if self.exec_start else None
        if started is None:
            return Handle(code=126)  # could not start: a failed probe, as kubelet counts it
        handle = Handle(pid=started[0], start=started[1])
        self.by_pid[handle.pid] = handle
        return handle

    def next_due(self) -> float | None:
        """When the next probe is to start (monotonic), or None if none waits."""
        return min((st.next_run for st in self.states.values() if st.handle is None), default=None)

    def take_failures(self) -> list[tuple[str, str, str]]:
        """The readiness probes that failed since the last call: (pod key, container, message),
        for the kubelet's Unhealthy events (liveness failures have their own, with the kill)."""
        failed, self.failed = self.failed, []
        return failed

    def tick(self) -> list[tuple[str, str, str, bool]]:
        """Advance every probe; returns (pod key, container, kind, passing) for each change."""
        now = time.monotonic()
        changes = []
        for (pod, container, kind), st in self.states.items():
            if st.handle is not None:
                code = st.handle.poll()
                if code is None and now < st.deadline:
                    continue
                ok = False
                out = ""
                if code is None:
                    st.handle.kill()
                    self.by_pid.pop(st.handle.pid, None)
                elif st.probe.action == "httpGet":
                    out = st.handle.output()
                    ok = code == 0 and out.isdigit() and 200 <= int(out) < 400
                else:
                    ok = code == 0
                    out = st.handle.output()
                st.handle.output()
                st.handle = None
                if not ok and kind == "readiness":
                    self.failed.append((pod, container, failure_message(st.probe, code, out)))
                st.successes, st.failures = (st.successes + 1, 0) if ok else (0, st.failures + 1)
                before = st.passing
                if ok and st.successes >= st.probe.success_threshold:
                    st.passing = True
                elif not ok and st.failures >= st.probe.failure_threshold:
                    st.passing = False
                if st.passing != before or (kind == "liveness" and not ok and
                                            st.failures >= st.probe.failure_threshold):
                    changes.append((pod, container, kind, st.passing))
            if st.handle is None and now >= st.next_run:
                st.handle = self._launch(pod, st)
                st.deadline = now + st.probe.timeout + 1
                st.next_run = next_tick(st, now, after=True)
        return changes
