"""The kubelet makes sandboxes without the manager's lock, and sorts out what changed meanwhile."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from types import SimpleNamespace

from emulator.runtime.kubelet import Kubelet
from tests.unit.test_controllers import default_state


class FakeRuntime:
    """Makes a sandbox per spec; while it does, ``meanwhile`` runs (a request on another thread)."""

    def __init__(self, base, lock, meanwhile) -> None:
        self.base, self.lock, self.meanwhile = base, lock, meanwhile
        self.destroyed: list = []
        self.held_while_creating: bool | None = None

    def create(self, specs):
        got: list[bool] = []

        def request() -> None:
            if self.lock.acquire(timeout=5):
                try:
                    got.append(self.meanwhile())
                finally:
                    self.lock.release()
        helper = threading.Thread(target=request)
        helper.start()
        helper.join()
        self.held_while_creating = not got
        return [SimpleNamespace(spec=s, name=f"box-{s.key}") for s in specs]

    def destroy(self, boxes, grace=2.0, **_):
        self.destroyed += boxes


def test_sandboxes_are_made_without_the_lock_and_a_pod_gone_meanwhile_gets_none(tmp_path):
    state = default_state()
    lock = threading.RLock()
    pods = [r for r in state.pods() if r.status.node]
    assert len(pods) >= 2
    gone, deleting = pods[0], pods[1]

    def request() -> bool:  # what an API request may do while the sandboxes are made
        state.remove("Pod", gone.obj.meta.namespace, gone.obj.meta.name)
        deleting.mark_deleting(30)
        return True

    @contextmanager
    def unlocked():
        lock.release()
        try:
            yield
        finally:
            lock.acquire()

    runtime = FakeRuntime(tmp_path, lock, request)
    kubelet = Kubelet(state, runtime, unlocked=unlocked)
    kubelet._spec = lambda rec: SimpleNamespace(key=rec.obj.key)
    with lock:
        assert kubelet._start_new()
    assert runtime.held_while_creating is False
    assert [b.name for b in runtime.destroyed] == [f"box-{gone.obj.key}"]  # nobody's sandbox: gone at once
    assert gone.obj.key not in kubelet.boxes
    assert deleting.obj.key in kubelet.boxes  # the next pass terminates it as any deleted pod
    assert set(kubelet.boxes) == {r.obj.key for r in pods[1:]}
