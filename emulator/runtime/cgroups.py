"""Pod and container cgroups: ``resources.limits`` enforced, fork bombs contained, no disks.

    <controller>/k8semu/<cluster>/<pod uid>/<container>      (cgroup v1: one tree per controller)
    /sys/fs/cgroup/k8semu/<cluster>/<pod uid>/<container>     (cgroup v2: one tree)

- memory: ``limits.memory`` (a process over it is OOM-killed; the kubelet reports OOMKilled);
- cpu: ``limits.cpu`` as a CFS quota per 100 ms, ``requests.cpu`` as shares/weight;
- pids: every pod gets at most POD_PIDS_MAX processes (kubelet's podPidsLimit; here a default,
  so that a fork bomb in a pod cannot take the machine's PIDs);
- devices (v1): only null, zero, full, random, urandom, tty and pseudo-terminals, as runc allows
  (v2 controls devices with BPF programs, which k8semu does not load: there the pod's own /dev
  is the only barrier).

Directories are created by k8semu (mkdir fails on an existing name, so nothing of anyone else's
is adopted), recorded, and removed with rmdir only, after their processes are gone.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulator.errors import RuntimeFailure
from emulator.model.pod import Resources

ROOT = Path("/sys/fs/cgroup")
POD_PIDS_MAX = 1024
CFS_PERIOD = 100_000
V1_CONTROLLERS = ("memory", "cpu", "pids", "devices")
DEVICES_ALLOWED = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm",
                   "c 136:* rwm")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@dataclass
class Cgroups:
    cluster: str
    root: Path = ROOT
    version: int = 0
    made: list[str] = field(default_factory=list)  # directories created, in creation order
    on_make: object = None  # called with each directory right after it is made (the run's records)

    def __post_init__(self) -> None:
        if not self.version:
            self.version = 2 if (self.root / "cgroup.controllers").exists() else 1

    # -- layout ------------------------------------------------------------------------
    def _bases(self) -> list[Path]:
        if self.version == 2:
            return [self.root]
        return [self.root / c for c in V1_CONTROLLERS if (self.root / c).is_dir()]

    def _dirs(self, *parts: str) -> list[Path]:
        return [base.joinpath("k8semu", self.cluster, *parts) for base in self._bases()]

    def _mkdir(self, path: Path) -> None:
        path.mkdir()
        self.made.append(str(path))
        if self.on_make:
            self.on_make(str(path))

    def _enable_v2(self, path: Path) -> None:
        """cgroup v2 hands controllers down only where the parent's subtree_control lists them."""
        wanted = {"memory", "cpu", "pids"} & set((path / "cgroup.controllers").read_text().split())
        if wanted:
            _write(path / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))

    def setup(self) -> None:
        """The cluster's directories (``k8semu`` is shared between clusters and kept if present).

        Raises:
            OSError: the cluster's directory exists already (not ours: refused, not adopted).
        """
        for base in self._bases():
            shared = base / "k8semu"
            if not shared.exists():
                shared.mkdir()
            if self.version == 2:
                self._enable_v2(shared)
            if (shared / self.cluster).exists():
                raise RuntimeFailure(f"cgroup {shared / self.cluster} exists and is not this run's; if a crashed "
                                     f"cluster {self.cluster!r} left it, 'sudo k8semu cleanup' removes it")
            self._mkdir(shared / self.cluster)
            if self.version == 2:
                self._enable_v2(shared / self.cluster)

    def pod(self, uid: str) -> list[str]:
        """Create a pod's cgroups (with the pod's PID limit); returns their cgroup.procs files,
        which the pod's PID 1 joins (its containers go into child cgroups)."""
        procs = []
        for path in self._dirs(uid):
            if not path.exists():
                self._mkdir(path)
            procs.append(str(path / "cgroup.procs"))
            if self.version == 2:  # v2 keeps processes out of cgroups that hand controllers down
                self._enable_v2(path)
                _write(path / "pids.max", str(POD_PIDS_MAX))
                if not (path / "pause").exists():
                    self._mkdir(path / "pause")
                procs[-1] = str(path / "pause" / "cgroup.procs")
            elif path.parents[2].name == "pids":
                _write(path / "pids.max", str(POD_PIDS_MAX))
            elif path.parents[2].name == "devices":
                self._limits(path, "devices", Resources())
        return procs

    def container(self, uid: str, name: str, resources: Resources) -> list[str]:
        """Create a container's cgroups with its limits; returns the cgroup.procs files a process
        writes its PID into to join them."""
        procs = []
        for path in self._dirs(uid, name):
            if not path.exists():
                self._mkdir(path)
            controller = "unified" if self.version == 2 else path.parents[3].name
            self._limits(path, controller, resources)
            procs.append(str(path / "cgroup.procs"))
        return procs

    def _limits(self, path: Path, controller: str, res: Resources) -> None:
        v2 = controller == "unified"
        if controller in ("memory", "unified") and res.memory_limit is not None:
            _write(path / ("memory.max" if v2 else "memory.limit_in_bytes"), str(res.memory_limit))
            if not v2 and (path / "memory.memsw.limit_in_bytes").exists():
                _write(path / "memory.memsw.limit_in_bytes", str(res.memory_limit))  # no escape into swap
            elif v2 and (path / "memory.swap.max").exists():
                _write(path / "memory.swap.max", "0")
        if controller in ("cpu", "unified"):
            if res.cpu_limit is not None:
                quota = max(1000, res.cpu_limit * CFS_PERIOD // 1000)
                if v2:
                    _write(path / "cpu.max", f"{quota} {CFS_PERIOD}")
                else:
                    _write(path / "cpu.cfs_period_us", str(CFS_PERIOD))
                    _write(path / "cpu.cfs_quota_us", str(quota))
            if res.cpu_request is not None:
                if v2:  # kubelet's conversion of shares to weight
                    shares = max(2, res.cpu_request * 1024 // 1000)
                    _write(path / "cpu.weight", str(1 + ((shares - 2) * 9999) // 262142))
                else:
                    _write(path / "cpu.shares", str(max(2, res.cpu_request * 1024 // 1000)))
        if controller == "devices":
            _write(path / "devices.deny", "a")
            for rule in DEVICES_ALLOWED:
                _write(path / "devices.allow", rule)

    # -- status ------------------------------------------------------------------------
    def oom_kills(self, uid: str, name: str) -> int:
        """How many processes the kernel's OOM killer has killed in the container's cgroup."""
        for path in self._dirs(uid, name):
            for file in ("memory.events", "memory.oom_control"):
                try:
                    text = (path / file).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    def processes(self, uid: str | None = None) -> set[int]:
        out: set[int] = set()
        for base in self._dirs(*((uid,) if uid else ())):
            if base.exists():
                for procs in base.rglob("cgroup.procs"):
                    try:
                        out |= {int(p) for p in procs.read_text().split()}
                    except (OSError, ValueError):
                        pass
        return out

    # -- teardown ----------------------------------------------------------------------
    def kill(self, uid: str, name: str) -> None:
        """SIGKILL what is left in a container's cgroups (its main process has exited)."""
        for path in self._dirs(uid, name):
            try:
                pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                continue
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def remove(self, uid: str | None = None, timeout: float = 5) -> None:
        """Kill what is left in a pod's cgroups (or the cluster's) and remove the directories
        k8semu made, deepest first."""
        deadline = time.monotonic() + timeout
        while (left := self.processes(uid)) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        prefixes = tuple(str(p) for p in self._dirs(*((uid,) if uid else ())))
        for path in sorted((p for p in self.made if p.startswith(prefixes)), key=len, reverse=True):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                continue
            self.made.remove(path)
