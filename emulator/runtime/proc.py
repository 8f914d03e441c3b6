"""Running programs as argv lists (never through a shell) and identifying processes safely.

A PID alone may be reused after a process dies; we record the PID with its start time (field 22
of /proc/PID/stat) and signal only when both still match.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Sequence

from emulator.errors import RuntimeFailure


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a program to completion.

    Raises:
        RuntimeFailure: with the command and its stderr, when ``check`` and it failed.
    """
    try:
        done = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except FileNotFoundError:
        raise RuntimeFailure(f"{argv[0]}: not installed (run: sudo make install)") from None
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"{' '.join(argv)}: timed out after {timeout}s") from None
    if check and done.returncode != 0:
        raise RuntimeFailure(f"{' '.join(argv)} failed ({done.returncode}): "
                             f"{(done.stderr or done.stdout).strip()}")
    return done


def ip_batch(lines: Sequence[str], netns: str | None = None, check: bool = True, force: bool = True) -> None:
    """Many iproute2 commands in one process (``ip -batch -``); far faster than one call each.
    With ``force=False`` ip stops at the first failing line (what creation needs: nothing after
    a clash is done).

    Every value in ``lines`` comes from naming/IPAM (validated names, addresses), never raw YAML.
    """
    if not lines:
        return
    argv = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else []) + ["-batch", "-"]
    run(argv, input="\n".join(lines) + "\n", check=check)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(pid: int, started: int | None) -> bool:
    now = start_time(pid)
    return now is not None and (started is None or now == started) and not _zombie(pid)


def signal_alive(pid: int, started: int | None, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to ``pid`` if it is still the process started at ``started``; whether it was
    sent. A process may end between the check and the signal (a pod's PID 1 whose children
    ended, a probe that finished): that is not an error, and must not end the caller (a
    manager's teardown once died of it)."""
    if not alive(pid, started):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_group(pid: int, started: int | None, sig: int = signal.SIGTERM) -> bool:
    """Signal the process group led by ``pid`` if it is still the process we started."""
    if not alive(pid, started):
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return signal_alive(pid, started, sig)
    return True


def stop_all(procs: Sequence[tuple[int, int | None]], grace: float = 2.0) -> None:
    """SIGTERM every recorded process group, then SIGKILL what is left after ``grace`` seconds."""
    targets = [(p, s) for p, s in procs if kill_group(p, s)]
    deadline = time.monotonic() + grace
    while targets and time.monotonic() < deadline:
        targets = [(p, s) for p, s in targets if alive(p, s)]
        _reap()
        if targets:
            time.sleep(0.02)
    for pid, started in targets:
        kill_group(pid, started, signal.SIGKILL)
    _reap()


def _reap() -> None:
    """Collect exited children so that they do not linger as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
