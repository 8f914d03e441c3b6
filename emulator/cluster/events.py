"""Events, as the API server keeps them: what happened to an object, newest last, repeated
events folded into one with a count (kubectl shows ``x3 over 10s``), the oldest dropped past a
bound (the API server's events expire after an hour; an emulator keeps a count instead).

Everything that fails alone reports here (a sandbox that cannot be made, a container that
cannot start or was OOM-killed, a policy rule that cannot be programmed, a restarted system
process), so ``describe`` and ``get events`` show why an object is not doing what it should.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_EVENTS = 5000


@dataclass
class Event:
    kind: str
    namespace: str
    name: str
    type: str  # Normal | Warning
    reason: str
    message: str
    source: str
    count: int = 1
    first: float = field(default_factory=time.time)
    last: float = field(default_factory=time.time)


@dataclass
class Events:
    items: "OrderedDict[tuple, Event]" = field(default_factory=OrderedDict)
    recorded: int = 0  # how many times ``record`` ran: whether any Event changed since a moment

    def record(self, kind: str, namespace: str, name: str, type_: str, reason: str, message: str,
               source: str = "kubelet") -> Event:
        self.recorded += 1
        key = (kind, namespace, name, type_, reason, message)
        event = self.items.pop(key, None)
        if event is None:
            event = Event(kind, namespace, name, type_, reason, message, source)
        else:
            event.count += 1
            event.last = time.time()
        self.items[key] = event
        while len(self.items) > MAX_EVENTS:
            self.items.popitem(last=False)
        return event

    def warn(self, kind: str, namespace: str, name: str, reason: str, message: str, source: str = "kubelet") -> Event:
        return self.record(kind, namespace, name, "Warning", reason, message, source)

    def normal(self, kind: str, namespace: str, name: str, reason: str, message: str, source: str = "kubelet") -> Event:
        return self.record(kind, namespace, name, "Normal", reason, message, source)

    def about(self, kind: str, namespace: str, name: str) -> list[Event]:
        return [e for e in self.items.values() if (e.kind, e.namespace, e.name) == (kind, namespace, name)]

    def all(self, namespace: str | None = None) -> list[Event]:
        return [e for e in self.items.values() if namespace is None or e.namespace == namespace]
