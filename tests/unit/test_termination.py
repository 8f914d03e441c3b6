"""The kubelet's termination sequence (runtime.hooks.Termination), with a clock given by hand."""
from __future__ import annotations

import time

from emulator.model.meta import ObjectMeta
from emulator.model.pod import Container, Pod, PodSpec, Probe
from emulator.runtime.hooks import EXTENSION, Termination


def pod(grace: int, *hooks: Probe | None) -> Pod:
    containers = tuple(Container(f"c{i}", "busybox", pre_stop=h) for i, h in enumerate(hooks))
    return Pod(ObjectMeta("p", "default"), PodSpec(containers, termination_grace=grace))


def test_sigterm_waits_for_the_pre_stop_hook_then_the_grace_period_ends_it() -> None:
    t = Termination.begin(pod(30, Probe("sleep", seconds=5)), "10.244.1.2", "", lambda c, a: None)
    now = time.monotonic()
    assert t.step(now + 1) == ""  # the hook is sleeping: no SIGTERM yet
    assert t.step(now + 5.1) == "sigterm"
    assert t.step(now + 20) == ""  # containers have the rest of the grace period to exit
    assert t.step(now + 30.1) == "kill"


def test_a_hook_that_outlasts_the_grace_period_is_cut_and_sigterm_gets_two_seconds() -> None:
    t = Termination.begin(pod(3, Probe("sleep", seconds=100)), "10.244.1.2", "", lambda c, a: None)
    now = time.monotonic()
    assert t.step(now + 2) == ""
    assert t.step(now + 3.1) == "sigterm"
    assert t.step(now + 3.1 + EXTENSION - 0.5) == ""
    assert t.step(now + 3.2 + EXTENSION) == "kill"


def test_without_hooks_sigterm_is_at_once_and_exec_hooks_run_in_their_container() -> None:
    started = []
    t = Termination.begin(pod(30, None, Probe("exec", command=("sh", "-c", "sleep 1"))), "10.244.1.2", "",
                          lambda c, a: started.append((c, a)) or None)
    assert started == [("c1", ["sh", "-c", "sleep 1"])]
    assert t.step(time.monotonic()) == "sigterm"  # the exec could not start: nothing to wait for


def test_zero_grace_runs_no_hooks() -> None:
    t = Termination.begin(pod(0, Probe("sleep", seconds=5)), "10.244.1.2", "", lambda c, a: None)
    assert t.hooks == [] and t.step(time.monotonic()) == "sigterm"


def test_a_delete_that_names_a_grace_period_overrides_the_pods_own() -> None:
    """``kubectl delete --grace-period=0 --force``: no hooks, SIGTERM then SIGKILL at once; a
    second delete with a shorter period cuts a running termination short, never lengthens it."""
    t = Termination.begin(pod(30, Probe("sleep", seconds=5)), "10.244.1.2", "", lambda c, a: None, grace=0)
    now = time.monotonic()
    assert t.hooks == [] and t.step(now) == "sigterm" and t.step(now + 0.01) == "kill"
    t = Termination.begin(pod(30, None), "10.244.1.2", "", lambda c, a: None)
    assert t.step(t.began) == "sigterm" and t.step(t.began + 5) == ""
    t.shorten(60)
    assert t.step(t.began + 31) == "kill"  # still the pod's 30 s
    t = Termination.begin(pod(30, None), "10.244.1.2", "", lambda c, a: None)
    t.step(t.began)
    t.shorten(2)
    assert t.step(t.began + 1) == "" and t.step(t.began + 2.01) == "kill"
