"""Python's cyclic garbage collector in the manager: short pauses on a big cluster.

The manager, its API server and every watch share one interpreter, and a full collection holds
it for as long as walking every container object takes: on 10 nodes and 1,000 pods (the store,
each pod's rendering, the watch history) that was 120-145 ms, every 8-10 s (measured with
``gc.callbacks``), and every request or watch event that fell into one waited for it (the
tail of the watch-delay figure, docs/benchmarks.md). Most of those objects live as long as the
cluster and are freed by reference counting when replaced; a full collection walks them to find
cycles they are not part of.

After each full collection its survivors are moved out of the collector's sight
(``gc.freeze``), so the next full collections walk only what survived since, and stay short.
Every ``THAW_EVERY`` seconds they are handed back (``gc.unfreeze``) and the next full
collection walks everything once, so a cycle that became garbage among them is freed within
that time rather than never: memory stays bounded, at the cost of one long pause per period.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

THAW_EVERY = 600.0


@dataclass
class Collector:
    """Called after each pass of the manager's loop (its lock held: no request runs)."""

    full: int = field(default_factory=lambda: gc.get_stats()[2]["collections"])
    thawed: float = field(default_factory=lambda: time.monotonic())

    def after_pass(self) -> None:
        full = gc.get_stats()[2]["collections"]
        if full == self.full:
            return
        self.full = full
        now = time.monotonic()
        if now - self.thawed >= THAW_EVERY:
            gc.unfreeze()  # the next full collection sees every object again
            self.thawed = now
        else:
            gc.freeze()
