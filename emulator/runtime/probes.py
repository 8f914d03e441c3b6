"""Readiness and liveness probes, run the way kubelet runs them.

httpGet and tcpSocket probes connect from the node (kubelet lives in the node's namespace) to
the pod IP; exec probes run inside the pod. Each probe is a short-lived process started
without blocking and collected on a later tick, so one slow probe never holds up the kubelet.
Success/failure thresholds, initial delay, period and timeout follow the pod spec.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

from emulator.model import naming
from emulator.model.pod import Container, Probe
from emulator.runtime.sandbox import enter_argv


@dataclass
class ProbeState:
    probe: Probe
    kind: str  # readiness | liveness
    started: float
    argv: list[str]
    cwd: str | None = None  # exec probes run in the container's working directory
    next_run: float = 0.0
    proc: subprocess.Popen | None = None
    deadline: float = 0.0
    successes: int = 0
    failures: int = 0
    passing: bool = False


def probe_argv(probe: Probe, container: Container, pod_ip: str, node: str, pause_pid: int) -> list[str]:
    if probe.action == "exec":
        return enter_argv(pause_pid, list(probe.command))
    port = container.port_number(probe.port) or 0
    on_node = ["ip", "netns", "exec", naming.node_netns(node)]
    if probe.action == "tcpSocket":
        return on_node + ["nc", "-z", "-w", str(probe.timeout), pod_ip, str(port)]
    scheme = probe.scheme.lower()
    return on_node + ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-m", str(probe.timeout),
                      f"{scheme}://{pod_ip}:{port}{probe.path}"]


@dataclass
class Probes:
    states: dict[tuple[str, str, str], ProbeState] = field(default_factory=dict)

    def start(self, rec, name: str, pid: int) -> bool:
        """Register a freshly started container's probes; returns its initial readiness."""
        pod = rec.obj
        container = next(c for c in pod.spec.containers if c.name == name)
        self.forget(pod.key, name)
        now = time.monotonic()
        pause = self._pause(rec)
        for kind, probe in (("readiness", container.readiness), ("liveness", container.liveness)):
            if probe is not None and pause:
                argv = probe_argv(probe, container, rec.status.ip, rec.status.node, pause)
                cwd = self.workdir_of(pod.key, name) if self.workdir_of and probe.action == "exec" else None
                self.states[(pod.key, name, kind)] = ProbeState(probe, kind, now, argv, cwd,
                                                                next_run=now + probe.initial_delay)
        return container.readiness is None

    pause_of = None  # set by the kubelet: pod key -> pause pid
    workdir_of = None  # set by the kubelet: (pod key, container) -> working directory

    def _pause(self, rec) -> int | None:
        return self.pause_of(rec.obj.key) if self.pause_of else None

    def forget(self, pod_key: str, container: str | None = None) -> None:
        for key in [k for k in self.states if k[0] == pod_key and (container is None or k[1] == container)]:
            st = self.states.pop(key)
            if st.proc and st.proc.poll() is None:
                st.proc.kill()
                st.proc.wait()

    def tick(self) -> list[tuple[str, str, str, bool]]:
        """Advance every probe; returns (pod key, container, kind, passing) for each change."""
        now = time.monotonic()
        changes = []
        for (pod, container, kind), st in self.states.items():
            if st.proc is not None:
                code = st.proc.poll()
                if code is None and now < st.deadline:
                    continue
                ok = False
                if code is None:
                    st.proc.kill()
                    st.proc.wait()
                elif st.probe.action == "httpGet":
                    out = st.proc.stdout.read().strip() if st.proc.stdout else ""
                    ok = code == 0 and out.isdigit() and 200 <= int(out) < 400
                else:
                    ok = code == 0
                if st.proc.stdout:
                    st.proc.stdout.close()
                st.proc = None
                st.successes, st.failures = (st.successes + 1, 0) if ok else (0, st.failures + 1)
                before = st.passing
                if ok and st.successes >= st.probe.success_threshold:
                    st.passing = True
                elif not ok and st.failures >= st.probe.failure_threshold:
                    st.passing = False
                if st.passing != before or (kind == "liveness" and not ok and
                                            st.failures >= st.probe.failure_threshold):
                    changes.append((pod, container, kind, st.passing))
            if st.proc is None and now >= st.next_run:
                st.proc = subprocess.Popen(st.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True, cwd=st.cwd)
                st.deadline = now + st.probe.timeout + 1
                st.next_run = now + st.probe.period
        return changes
