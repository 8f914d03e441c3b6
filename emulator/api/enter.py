"""Entering a pod as ``kubectl exec`` does: all of its namespaces, the container's cgroups,
capabilities, user, environment and working directory.

Shared by ``k8semu exec`` and the API's ``exec`` subresource; both start from the manager's
``pod`` record. Nothing here comes from a manifest unchecked: the directory and user are the
spec layer's validated values, the cgroup paths are k8semu's own, and every command is an argv
list.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from emulator.errors import NotFoundError

# joins each cgroup named before "--", then runs the rest: the paths are arguments, never text
# of the script (a preexec_fn would not be safe in the threaded manager)
JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"'


def container_environ(pid: int | None) -> dict[str, str] | None:
    """The environment a container's main process started with (what kubectl exec gives you)."""
    if not pid:
        return None
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


@dataclass(frozen=True)
class ExecTarget:
    """How to run a command where ``k8semu exec`` would: argv, environment, directory, and the
    cgroups the process joins before it enters the pod (a container's, as kubectl exec gives)."""
    argv: list[str]
    env: dict[str, str] | None = None  # a container's own environment; None: inherit
    cgroups: tuple[str, ...] = ()

    def _join(self) -> None:  # runs in the child before exec; the CLI is single-threaded
        for procs in self.cgroups:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

    def run(self, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv, env=self.env, preexec_fn=self._join if self.cgroups else None, **kwargs)

    def call(self) -> int:
        env = self.env or {k: v for k, v in os.environ.items() if k in ("PATH", "TERM", "LANG", "HOME")}
        return subprocess.call(self.argv, env=env, preexec_fn=self._join if self.cgroups else None)

    def threaded_argv(self) -> list[str]:
        """The argv for a threaded process to start: the cgroups joined by a shell first."""
        if not self.cgroups:
            return list(self.argv)
        return ["sh", "-c", JOIN, "sh", *self.cgroups, "--", *self.argv]


def pod_target(pod: dict, container: str | None, command: list[str]) -> ExecTarget:
    """``command`` in a container of ``pod`` (the manager's ``pod`` record).

    Raises:
        NotFoundError: no such container in the pod.
    """
    if container and container not in pod["containers"]:
        raise NotFoundError(f'container {container} is not valid for pod {pod["name"]}')
    if pod.get("finished"):
        raise NotFoundError(f"cannot exec into a container in a completed pod; current phase is {pod['finished']}")
    name = container or pod["containers"][0]
    detail = pod["details"][name]
    workdir = detail["workdir"]
    if not workdir.startswith("/run/k8semu/") and not os.path.isdir(workdir):
        workdir = detail["fallback"]
    bounding = ",".join(["-all"] + [f"+{c.lower()}" for c in detail["caps"]])
    argv = ["nsenter", "-t", str(pod["pause_pid"]), "-i", "-u", "-n", "-p", "-m", "-W", workdir, "--",
            "setpriv", "--nnp", "--inh-caps=-all", f"--bounding-set={bounding}"]
    if detail.get("uid") is not None:
        argv += [f"--reuid={detail['uid']}", f"--regid={detail.get('gid', detail['uid'])}", "--clear-groups"]
    return ExecTarget(argv + ["--", *command], container_environ(pod["pids"].get(name)), tuple(detail["cgroups"]))
