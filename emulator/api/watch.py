"""resourceVersions and watches: what the API has shown of each kind, and who is watching it.

The cluster's store keeps objects, not a history, so this hub keeps one: each kind's objects as
the API last rendered them, a resourceVersion (one counter for the whole cluster, as etcd's
revision) stamped on an object whenever its rendering changes, and the recent events. Every
list and get goes through it, so a list's resourceVersion is one a watch can start from. The
manager calls ``observe`` with its lock held after each pass of its loop and each change a
request makes; when something changed, the watched kinds are rendered right then and each
watcher is handed its events through its own queue (``deliver`` only schedules), so a watcher
hears of a change within the pass that made it and never holds the manager up. A background
pass each second catches what changed without the manager calling it a change. A watch from a
resourceVersion older than the kept history gets 410 Gone, as from a compacted etcd.
"""
from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

HISTORY = 2000  # events kept per kind (kube-apiserver's watch cache keeps a window too)
SAFETY_EVERY = 1.0
Render = Callable[[str], list[dict]]
RenderOne = Callable[[str, str, str], "dict | None"]  # kind, namespace, name -> the object, or None


class Gone(Exception):
    """The resourceVersion asked for is older than the history kept (410 Expired)."""


def _key(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@dataclass
class Watcher:
    """One open watch: ``accept`` filters objects, ``deliver`` is called (on the hub's thread)
    with the events of one refresh that it accepts, in order: one hand-over per refresh, not
    per event; the server side writes them to the connection."""

    kind: str
    accept: Callable[[dict], bool]
    deliver: Callable[[list[dict]], None]


@dataclass
class KindState:
    objects: dict[tuple[str, str], dict] = field(default_factory=dict)  # key -> the object last rendered
    events: deque = field(default_factory=lambda: deque(maxlen=HISTORY))  # (rv, type, obj)
    oldest: int = 0  # events after this resourceVersion are all in ``events``
    primed: bool = False


class Hub:
    def __init__(self, render: Render, render_one: RenderOne | None = None) -> None:
        self.render = render
        self.render_one = render_one
        self.lock = threading.Lock()
        self.rv = 0
        self.kinds: dict[str, KindState] = {}
        self.watchers: list[Watcher] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="api-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def observe(self, changed: bool) -> None:
        """The manager's pass or request, with its lock held: when it changed something, the
        watched kinds are rendered now (the watchers hear of it without waiting for the lock);
        otherwise the background pass catches what changed without the manager saying so."""
        if changed and self.watchers:
            self.refresh_watched()

    # -- reads ------------------------------------------------------------------------------
    def refresh(self, kind: str) -> None:
        """Render ``kind`` and turn differences from the last rendering into events."""
        items = self.render(kind)
        with self.lock:
            state = self.kinds.setdefault(kind, KindState())
            made: list[dict] = []
            seen = {}
            for obj in items:
                key = _key(obj)
                seen[key] = True
                event = self._put(state, key, obj)
                if event is not None:
                    made.append(event)
            for key in [k for k in state.objects if k not in seen]:
                made.append(self._drop(state, key))
            if not state.primed:
                state.primed, state.oldest = True, self.rv
            if made:
                self._hand_out(kind, made)

    def _put(self, state: KindState, key: tuple[str, str], obj: dict) -> dict | None:
        """``obj`` as rendered now: stamped with a new resourceVersion and stored when it differs
        from what was shown (its event returned, once the kind is primed), else None."""
        old = state.objects.get(key)
        if old is not None:
            obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if obj == old:  # dict equality: nested, in C
                return None
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        state.objects[key] = obj
        return self._event(state, "ADDED" if old is None else "MODIFIED", obj) if state.primed else None

    def _drop(self, state: KindState, key: tuple[str, str]) -> dict:
        """The object at ``key`` is gone: its DELETED event, with a resourceVersion of its own."""
        obj = state.objects.pop(key)
        self.rv += 1
        gone = json.loads(json.dumps(obj))
        gone["metadata"]["resourceVersion"] = str(self.rv)
        return self._event(state, "DELETED", gone)

    def _event(self, state: KindState, type_: str, obj: dict) -> dict:
        if len(state.events) == state.events.maxlen:
            state.oldest = state.events[0][0]
        state.events.append((self.rv, type_, obj))
        return {"type": type_, "object": obj}  # one dict for every watcher: serialized once (server)

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """One object as of now (a GET, or a write reading what it changes), rendered alone when
        the hub can (``render_one``) and its kind has been rendered before; a change it shows
        is stamped and handed to the watchers as a refresh of the whole kind would."""
        key = (namespace, name)
        with self.lock:
            state = self.kinds.get(kind)
            primed = state is not None and state.primed
        if self.render_one is None or kind == "Event" or not primed:
            items, _ = self.list(kind)
            return next((o for o in items if _key(o) == key), None)
        obj = self.render_one(kind, namespace, name)
        with self.lock:
            if obj is None:
                if key in state.objects:
                    self._hand_out(kind, [self._drop(state, key)])
                return None
            event = self._put(state, key, obj)
            if event is not None:
                self._hand_out(kind, [event])
            return state.objects[key]

    def _hand_out(self, kind: str, made: list[dict]) -> None:
        """Each watcher of ``kind`` gets the events it accepts, at once (the hub's lock held)."""
        for w in self.watchers:
            if w.kind == kind:
                mine = [e for e in made if w.accept(e["object"])]
                if mine:
                    w.deliver(mine)

    def list(self, kind: str) -> tuple[list[dict], str]:
        """The objects of ``kind`` as of now, and the resourceVersion of that list."""
        self.refresh(kind)
        with self.lock:
            return list(self.kinds[kind].objects.values()), str(self.rv)

    # -- watches ----------------------------------------------------------------------------
    def watch(self, watcher: Watcher, since: str, initial: bool) -> str:
        """Start ``watcher``: first the events after ``since`` (or, with ``initial`` or no
        ``since``, every current object as ADDED), then the changes as they happen; returns the
        resourceVersion the stream starts after.

        Raises:
            Gone: ``since`` is older than the kept history.
            ValueError: ``since`` is not a resourceVersion.
        """
        self.refresh(watcher.kind)
        with self.lock:
            state = self.kinds[watcher.kind]
            if initial or since in ("", "0"):
                first = [{"type": "ADDED", "object": obj} for obj in
                         sorted(state.objects.values(), key=lambda o: int(o["metadata"]["resourceVersion"]))
                         if watcher.accept(obj)]
            else:
                start = int(since)
                if start < state.oldest:
                    raise Gone(f"too old resource version: {start} ({state.oldest})")
                first = [{"type": type_, "object": obj} for rv, type_, obj in state.events
                         if rv > start and watcher.accept(obj)]
            if first:
                watcher.deliver(first)
            self.watchers.append(watcher)
            return str(self.rv)

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            if watcher in self.watchers:
                self.watchers.remove(watcher)

    def current(self) -> str:
        with self.lock:
            return str(self.rv)

    def refresh_watched(self) -> None:
        with self.lock:
            kinds = {w.kind for w in self.watchers}
        for kind in kinds:
            try:
                self.refresh(kind)
            except Exception as exc:  # noqa: BLE001 - a bug must not end every watch
                print(f"[ERROR] watch refresh of {kind}: {exc!r}", flush=True)

    def _run(self) -> None:
        """Once a second while anyone watches: what changed without the manager calling it a
        change (an Event's count, a status the loop did not flag)."""
        while not self.stopping.wait(SAFETY_EVERY):
            if self.watchers:
                self.refresh_watched()
