"""The manager's collector pacing: a full collection's survivors are frozen out of the next
ones, and handed back every THAW_EVERY seconds so cycles among them are still freed."""
from __future__ import annotations

import gc

from emulator.runtime import gcpacing
from emulator.runtime.gcpacing import Collector


def test_survivors_of_a_full_collection_are_frozen_then_thawed_each_period(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(gcpacing.time, "monotonic", lambda: clock[0])
    gc.unfreeze()
    try:
        collector = Collector()
        collector.after_pass()  # no full collection since: nothing done
        assert gc.get_freeze_count() == 0
        gc.collect()
        collector.after_pass()
        assert gc.get_freeze_count() > 0  # the survivors: out of the next full collections' walk
        frozen = gc.get_freeze_count()
        collector.after_pass()  # the same collection is not acted on twice
        assert gc.get_freeze_count() == frozen
        clock[0] += gcpacing.THAW_EVERY
        gc.collect()
        collector.after_pass()
        assert gc.get_freeze_count() == 0  # handed back: the next full collection walks everything

        class Node:
            pass
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle, frozen, then garbage: freed once thawed
        gc.collect()
        clock[0] += 1
        collector.after_pass()
        assert gc.get_freeze_count() > 0
        del a, b
        assert gc.collect() == 0  # frozen: not seen
        clock[0] += gcpacing.THAW_EVERY
        gc.collect()
        collector.after_pass()
        assert gc.collect() >= 2  # thawed: the cycle is freed
    finally:
        gc.unfreeze()
