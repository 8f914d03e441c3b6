"""The watch hub without a server: resourceVersions stamped on changes, events handed to each
watcher once per refresh (every event of the refresh it accepts, in order), history and 410."""
from __future__ import annotations

import pytest

from emulator.api.watch import Gone, Hub, Watcher


def _pod(name: str, phase: str, ns: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "status": {"phase": phase}}


def test_a_refresh_hands_each_watcher_its_events_at_once_in_order():
    world = {"Pod": [_pod("a", "Pending"), _pod("b", "Pending")]}
    hub = Hub(lambda kind: [dict(o, metadata=dict(o["metadata"])) for o in world[kind]])
    every: list[list[dict]] = []
    only_b: list[list[dict]] = []
    hub.watch(Watcher("Pod", lambda o: True, every.append), "", False)
    hub.watch(Watcher("Pod", lambda o: o["metadata"]["name"] == "b", only_b.append), "", False)
    assert [[e["object"]["metadata"]["name"] for e in batch] for batch in every] == [["a", "b"]]  # the current objects
    assert [[e["type"] for e in batch] for batch in only_b] == [["ADDED"]]
    every.clear(), only_b.clear()
    world["Pod"] = [_pod("a", "Running"), _pod("b", "Running"), _pod("c", "Pending")]
    hub.refresh("Pod")
    assert len(every) == 1 and [(e["type"], e["object"]["metadata"]["name"]) for e in every[0]] == [
        ("MODIFIED", "a"), ("MODIFIED", "b"), ("ADDED", "c")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in every[0]]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert [[(e["type"], e["object"]["metadata"]["name"]) for e in b] for b in only_b] == [[("MODIFIED", "b")]]
    every.clear(), only_b.clear()
    hub.refresh("Pod")  # nothing changed: nobody is handed anything
    assert every == [] and only_b == []
    world["Pod"] = [_pod("b", "Running")]
    hub.refresh("Pod")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in every[0]] == [("DELETED", "a"), ("DELETED", "c")]
    assert only_b == []


def test_a_watch_from_a_resource_version_replays_what_came_after_it_or_is_gone():
    world = {"Pod": [_pod("a", "Pending")]}
    hub = Hub(lambda kind: [dict(o, metadata=dict(o["metadata"])) for o in world[kind]])
    _, since = hub.list("Pod")
    world["Pod"] = [_pod("a", "Running")]
    hub.refresh("Pod")
    got: list[list[dict]] = []
    hub.watch(Watcher("Pod", lambda o: True, got.append), since, False)
    assert [[(e["type"], e["object"]["status"]["phase"]) for e in b] for b in got] == [[("MODIFIED", "Running")]]
    with pytest.raises(Gone):
        hub.watch(Watcher("Pod", lambda o: True, got.append), "-5", False)


def test_a_get_renders_one_object_and_hands_out_what_changed_as_a_refresh_would():
    world = {"Pod": [_pod("a", "Pending"), _pod("b", "Pending")]}
    rendered: list[str] = []

    def one(kind: str, namespace: str, name: str):
        rendered.append(name)
        return next((dict(o, metadata=dict(o["metadata"])) for o in world[kind] if o["metadata"]["name"] == name), None)
    hub = Hub(lambda kind: [dict(o, metadata=dict(o["metadata"])) for o in world[kind]], one)
    got: list[list[dict]] = []
    hub.watch(Watcher("Pod", lambda o: True, got.append), "", False)
    got.clear()
    first = hub.get("Pod", "default", "a")
    assert rendered == ["a"] and first["status"]["phase"] == "Pending" and got == []  # unchanged: no event
    world["Pod"][0] = _pod("a", "Running")
    now = hub.get("Pod", "default", "a")
    assert now["status"]["phase"] == "Running"
    assert int(now["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert [[(e["type"], e["object"]["metadata"]["name"]) for e in b] for b in got] == [[("MODIFIED", "a")]]
    got.clear()
    hub.refresh("Pod")  # the refresh finds nothing new: the get already stamped it
    assert got == []
    assert hub.get("Pod", "default", "nope") is None
    world["Pod"] = [_pod("b", "Pending")]
    assert hub.get("Pod", "default", "a") is None
    assert [[(e["type"], e["object"]["metadata"]["name"]) for e in b] for b in got] == [[("DELETED", "a")]]
