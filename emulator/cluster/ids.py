"""Id allocators: every number that names something in the data plane (a Service port, its
groups, a NetworkPolicy rule and its conjunction) comes from one of these, never from
arithmetic on another id (Antrea's cookie allocator; the landed code's ``rule * 1000 + index``
collided and froze every switch).

An allocator hands out the lowest free number in its range for a key, returns the same number
for the same key until the key is released, and reuses released numbers. ``retain`` releases
every key not in a given set, which is how a full recomputation (a new network view) frees the
ids of objects that are gone. Two keys never share a number: ``get`` checks, and raises
``IdsExhausted`` rather than wrap around.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Hashable, Iterable


class IdsExhausted(Exception):
    """Every id of an allocator's range is in use."""


@dataclass
class IdAllocator:
    name: str
    low: int
    high: int  # inclusive
    by_key: dict[Hashable, int] = field(default_factory=dict)
    by_id: dict[int, Hashable] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)  # released ids (a heap)
    next: int | None = None

    def __post_init__(self) -> None:
        if self.next is None:
            self.next = self.low

    def get(self, key: Hashable) -> int:
        """The id of ``key``, allocating the lowest free one the first time.

        Raises:
            IdsExhausted: the range is full.
        """
        found = self.by_key.get(key)
        if found is not None:
            return found
        while self.free:
            candidate = heapq.heappop(self.free)
            if candidate not in self.by_id:
                return self._take(key, candidate)
        while self.next <= self.high:
            candidate = self.next
            self.next += 1
            if candidate not in self.by_id:
                return self._take(key, candidate)
        raise IdsExhausted(f"{self.name}: all {self.high - self.low + 1} ids are in use")

    def _take(self, key: Hashable, value: int) -> int:
        if value in self.by_id:  # the collision check: never two owners for one number
            raise AssertionError(f"{self.name}: id {value} already belongs to {self.by_id[value]!r}")
        self.by_key[key] = value
        self.by_id[value] = key
        return value

    def release(self, key: Hashable) -> None:
        value = self.by_key.pop(key, None)
        if value is not None:
            del self.by_id[value]
            heapq.heappush(self.free, value)

    def retain(self, keys: Iterable[Hashable]) -> None:
        """Release every key that is not in ``keys``."""
        keep = set(keys)
        for key in [k for k in self.by_key if k not in keep]:
            self.release(key)

    def __len__(self) -> int:
        return len(self.by_key)


@dataclass
class DataplaneIds:
    """The id spaces of one cluster's network view.

    Ranges: OpenFlow conjunction ids are 32 bits; group ids are 32 bits; cookies keep 56 bits
    for the object (``pipeline.cookie``). Services and rules have ranges large enough that
    exhaustion means an absurd cluster, which is refused object by object, not as a whole.
    """
    service_ports: IdAllocator = field(default_factory=lambda: IdAllocator("service port", 1, 2**24))
    groups: IdAllocator = field(default_factory=lambda: IdAllocator("group", 1, 2**31))
    rules: IdAllocator = field(default_factory=lambda: IdAllocator("policy rule", 1, 2**31))
