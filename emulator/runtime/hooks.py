"""The kubelet's termination of a deleted pod: preStop hooks, SIGTERM, the grace period, SIGKILL.

As the kubelet does: each container's ``lifecycle.preStop`` runs first (exec in the container,
httpGet from the node to the pod, or sleep), all within ``terminationGracePeriodSeconds``; once
they are done, or the grace period has run out (the kubelet then gives 2 s more, once), the
containers get SIGTERM, and whatever still runs at the deadline is killed with the sandbox.
Nothing waits here: ``Termination.step`` is called every tick and says what is due, so a pod
with a long grace period costs its own time, not the cluster's.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from emulator.model.pod import Container, Pod
from emulator.runtime.proc import alive, signal_alive

EXTENSION = 2.0  # kubelet: a hook that used the whole grace period leaves SIGTERM 2 s


@dataclass
class Hook:
    """One running preStop hook: a process (exec through the shim, or curl from the node), or
    a sleep until a time."""
    container: str
    pid: tuple[int, int | None] | None = None
    proc: subprocess.Popen | None = None
    until: float = 0.0

    def done(self, now: float) -> bool:
        if self.proc is not None:
            return self.proc.poll() is not None
        if self.pid is not None:
            return not alive(*self.pid)
        return now >= self.until

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        elif self.pid is not None:
            signal_alive(*self.pid)


def http_hook_argv(container: Container, pod_ip: str, node_netns: str, timeout: int) -> list[str] | None:
    """curl from the pod's node, as the kubelet's HTTP handler calls the pod (argv, no shell)."""
    hook = container.pre_stop
    port = container.port_number(hook.port) if hook else None
    if hook is None or not port:
        return None
    return ["ip", "netns", "exec", node_netns, "curl", "-sk", "-o", "/dev/null", "-m", str(max(1, timeout)),
            f"{hook.scheme.lower()}://{pod_ip}:{port}{hook.path}"]


@dataclass
class Termination:
    deadline: float
    hooks: list[Hook] = field(default_factory=list)
    signalled: bool = False
    began: float = 0.0

    def shorten(self, grace: int) -> None:
        """A second delete with a shorter grace period (``kubectl delete --grace-period=0
        --force`` of a Terminating pod): the deadline moves earlier, never later."""
        self.deadline = min(self.deadline, self.began + grace)

    @classmethod
    def begin(cls, pod: Pod | None, pod_ip: str, node_netns: str,
              exec_start: Callable[[str, list[str]], tuple[int, int | None] | None],
              grace: int | None = None) -> "Termination":
        """Start every container's preStop hook; SIGTERM comes from ``step``. ``grace``: the
        delete's gracePeriodSeconds, when it named one (0: no hooks, SIGKILL at once)."""
        now = time.monotonic()
        if grace is None:
            grace = pod.spec.termination_grace if pod is not None else 0
        hooks: list[Hook] = []
        for c in pod.spec.containers if pod is not None and grace > 0 else ():
            hook = c.pre_stop
            if hook is None:
                continue
            if hook.action == "sleep":
                hooks.append(Hook(c.name, until=now + hook.seconds))
            elif hook.action == "exec":
                started = exec_start(c.name, list(hook.command))
                if started:
                    hooks.append(Hook(c.name, pid=started))
            elif argv := http_hook_argv(c, pod_ip, node_netns, grace):
                hooks.append(Hook(c.name, proc=subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        return cls(now + grace, hooks, began=now)

    def step(self, now: float) -> str:
        """"sigterm" when the containers are due their SIGTERM now, "kill" once the grace period
        is over, else "" (hooks running, or containers given time to exit)."""
        if not self.signalled:
            if all(h.done(now) for h in self.hooks):
                self.signalled = True
                return "sigterm"
            if now >= self.deadline:
                for h in self.hooks:
                    h.stop()
                self.signalled = True
                self.deadline = now + EXTENSION
                return "sigterm"
            return ""
        return "kill" if now >= self.deadline else ""

    def abandon(self) -> None:
        for h in self.hooks:
            h.stop()
