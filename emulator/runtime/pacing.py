"""When the manager's loop ticks next: on time for the next probe, soon after a probe's process
exits, and never so often that ticking takes more than a fifth of the machine's time.

kubelet runs each probe on its own ticker and reports a result the moment it has one. The
manager runs every probe from its one loop (one lock over the store), which used to tick every
50 ms (200 ms when idle): a probe ran up to a tick late and its result waited up to another
tick, so a pod whose readiness probe passes at once was reported ready up to ~100 ms after
kubelet would have. Waking the loop for a due probe and for a probe's exit removes that; the
duty bound keeps a cluster with thousands of probes from spinning the loop.

A probe's exit is seen through a pidfd (Linux 5.3 and later): readable once the process has
exited, without reaping it (the loop still collects it with ``Popen.poll``). Where pidfds are
missing the loop falls back to its ticks: results come as late as before, never lost.
"""
from __future__ import annotations

import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Callable

DUTY = 0.2  # the loop ticks for at most this share of the time


@dataclass
class Pacer:
    """The loop's wait before its next tick."""
    tick: float = 0.05  # while things change
    idle: float = 0.2  # when all is still
    floor: float = 0.002
    started: float = 0.0  # when the last tick started (monotonic)
    cost: float = 0.0  # how long it took

    def begin(self) -> None:
        self.started = time.monotonic()

    def end(self) -> None:
        self.cost = time.monotonic() - self.started

    def not_before(self) -> float:
        """The earliest moment the next tick may start under the duty bound."""
        return self.started + max(self.floor, self.cost / DUTY)

    def timeout(self, quiet: bool, due: float | None) -> float:
        """Seconds to wait: a tick's length, or less when a probe is due sooner (never before
        :meth:`not_before`)."""
        now = time.monotonic()
        wait = self.idle if quiet else self.tick
        if due is not None:
            wait = min(wait, max(due, self.not_before()) - now)
        return max(wait, 0.0)


class ExitWatch:
    """Calls ``on_exit`` (from its own thread) when a watched process exits, no sooner than
    ``not_before()``; exits that come meanwhile are reported together."""

    def __init__(self, on_exit: Callable[[], None], not_before: Callable[[], float]) -> None:
        self.on_exit, self.not_before = on_exit, not_before
        self.available = hasattr(os, "pidfd_open")
        self.poller = select.epoll() if self.available else None
        self.fds: set[int] = set()
        self.lock = threading.Lock()
        if self.poller is not None:
            threading.Thread(target=self._run, name="exit-watch", daemon=True).start()

    def watch(self, pid: int) -> None:
        """Report ``pid``'s exit (a child not yet reaped: its pidfd stays valid until then)."""
        if self.poller is None:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # an old kernel, or the process is gone already: the ticks collect it
            return
        with self.lock:
            self.fds.add(fd)
        self.poller.register(fd, select.EPOLLIN | select.EPOLLONESHOT)

    def _run(self) -> None:
        assert self.poller is not None
        while True:
            try:
                events = self.poller.poll()
            except OSError:  # closed
                return
            with self.lock:
                for fd, _ in events:
                    if fd in self.fds:
                        self.fds.discard(fd)
                        self.poller.unregister(fd)
                        os.close(fd)
            delay = self.not_before() - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.on_exit()
