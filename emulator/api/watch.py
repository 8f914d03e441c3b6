"""resourceVersions and watches: what the API has shown of each kind, and who is watching it.

The cluster's store keeps objects, not a history, so this hub keeps one: each kind's objects as
the API last rendered them, a resourceVersion (one counter for the whole cluster, as etcd's
revision) stamped on an object whenever its rendering changes, and the recent events. Every
list and get goes through it, so a list's resourceVersion is one a watch can start from. The
manager calls ``poke`` after each loop pass and each change; a thread then re-renders the kinds
being watched (at most every ``MIN_INTERVAL``) and hands each watcher its events through its
own queue, so neither the manager nor a slow watcher waits on the other. A watch from a
resourceVersion older than the kept history gets 410 Gone, as from a compacted etcd.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

HISTORY = 2000  # events kept per kind (kube-apiserver's watch cache keeps a window too)
MIN_INTERVAL = 0.01
BOOKMARK_EVERY = 10.0
Render = Callable[[str], list[dict]]


class Gone(Exception):
    """The resourceVersion asked for is older than the history kept (410 Expired)."""


def _key(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _stable(obj: dict) -> str:
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return json.dumps({**obj, "metadata": meta}, sort_keys=True)


@dataclass
class Watcher:
    """One open watch: ``accept`` filters objects, ``deliver`` is called (on the hub's thread)
    with each event; the server side turns it into a chunk on the connection."""

    kind: str
    accept: Callable[[dict], bool]
    deliver: Callable[[dict], None]


@dataclass
class KindState:
    objects: dict[tuple[str, str], tuple[str, dict]] = field(default_factory=dict)  # key -> (stable text, obj)
    events: deque = field(default_factory=lambda: deque(maxlen=HISTORY))  # (rv, type, obj)
    oldest: int = 0  # events after this resourceVersion are all in ``events``
    primed: bool = False


class Hub:
    def __init__(self, render: Render) -> None:
        self.render = render
        self.lock = threading.Lock()
        self.rv = 0
        self.kinds: dict[str, KindState] = {}
        self.watchers: list[Watcher] = []
        self.dirty = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="api-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.dirty.set()
        self.thread.join(5)

    def poke(self) -> None:
        """Something may have changed (the manager calls this; it only sets an event)."""
        self.dirty.set()

    # -- reads ------------------------------------------------------------------------------
    def refresh(self, kind: str) -> None:
        """Render ``kind`` and turn differences from the last rendering into events."""
        items = self.render(kind)
        with self.lock:
            state = self.kinds.setdefault(kind, KindState())
            seen = {}
            for obj in items:
                key, text = _key(obj), _stable(obj)
                seen[key] = True
                old = state.objects.get(key)
                if old is not None and old[0] == text:
                    continue
                self.rv += 1
                obj["metadata"]["resourceVersion"] = str(self.rv)
                state.objects[key] = (text, obj)
                if state.primed:
                    self._event(kind, state, "ADDED" if old is None else "MODIFIED", obj)
            for key in [k for k in state.objects if k not in seen]:
                _, obj = state.objects.pop(key)
                self.rv += 1
                gone = json.loads(json.dumps(obj))
                gone["metadata"]["resourceVersion"] = str(self.rv)
                self._event(kind, state, "DELETED", gone)
            if not state.primed:
                state.primed, state.oldest = True, self.rv

    def _event(self, kind: str, state: KindState, type_: str, obj: dict) -> None:
        if len(state.events) == state.events.maxlen:
            state.oldest = state.events[0][0]
        state.events.append((self.rv, type_, obj))
        for w in self.watchers:
            if w.kind == kind and w.accept(obj):
                w.deliver({"type": type_, "object": obj})

    def list(self, kind: str) -> tuple[list[dict], str]:
        """The objects of ``kind`` as of now, and the resourceVersion of that list."""
        self.refresh(kind)
        with self.lock:
            return [obj for _, obj in self.kinds[kind].objects.values()], str(self.rv)

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
                for _, obj in sorted(state.objects.values(), key=lambda t: int(t[1]["metadata"]["resourceVersion"])):
                    if watcher.accept(obj):
                        watcher.deliver({"type": "ADDED", "object": obj})
            else:
                start = int(since)
                if start < state.oldest:
                    raise Gone(f"too old resource version: {start} ({state.oldest})")
                for rv, type_, obj in state.events:
                    if rv > start and watcher.accept(obj):
                        watcher.deliver({"type": type_, "object": obj})
            self.watchers.append(watcher)
            return str(self.rv)

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            if watcher in self.watchers:
                self.watchers.remove(watcher)

    def current(self) -> str:
        with self.lock:
            return str(self.rv)

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.dirty.wait(BOOKMARK_EVERY)
            self.dirty.clear()
            if self.stopping.is_set():
                return
            with self.lock:
                kinds = {w.kind for w in self.watchers}
            for kind in kinds:
                try:
                    self.refresh(kind)
                except Exception as exc:  # noqa: BLE001 - a bug must not end every watch
                    print(f"[ERROR] watch refresh of {kind}: {exc!r}", flush=True)
            time.sleep(MIN_INTERVAL)  # coalesce bursts of pokes

    def has_watchers(self) -> bool:
        with self.lock:
            return bool(self.watchers)
