"""Impairments and partitions (issue #16): what an emulated link may be made to suffer, typed and
checked once, for the spec (``spec.impairments``), ``k8semu impair/partition/heal`` and the
scenario steps alike.

A link is one end of the emulation's wiring, named as a user names it: ``node/NAME`` (the
node's eth0 on the underlay), ``external/NAME`` (an external host's eth0) or
``pod/NAMESPACE/NAME`` (the pod's eth0). An impairment holds every property the link has now
(setting one again replaces it whole, as ``tc qdisc replace`` does). A partition drops every
frame between two sets of nodes or external hosts, both ways or only from the first set to the
second. Quantities are written as tc writes them (``50Mbit``, ``10%``, ``100ms``) and kept as
numbers, so that nothing a user typed reaches a tc or nft command as text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields

from emulator.model import validation

LINK_KINDS = ("node", "external", "pod")
MIN_RATE, MAX_RATE = 8_000, 100_000_000_000  # bit/s: 8 kbit .. 100 Gbit
MIN_MTU, MAX_MTU = 576, 9000
MAX_DELAY_MS = 60_000.0
NETEM_FIELDS = ("delay", "jitter", "duplicate", "reorder")  # what only sch_netem can do

_RATE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(bit|kbit|mbit|gbit|k|m|g)?$", re.IGNORECASE)
_RATE_UNITS = {None: 1, "bit": 1, "kbit": 10**3, "k": 10**3, "mbit": 10**6, "m": 10**6, "gbit": 10**9, "g": 10**9}
_TIME = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s)$")
_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_rate(value: object) -> int:
    """``50Mbit``, ``50mbit``, ``50M`` or a number of bit/s -> bit/s (decimal units, as tc's).

    Raises:
        ValueError: the message names the accepted forms and bounds.
    """
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    m = _RATE.match(text)
    if not m:
        raise ValueError(f"{value!r} is not a rate: write it as tc does, e.g. 50Mbit, 500kbit, 1Gbit")
    rate = int(float(m.group(1)) * _RATE_UNITS[m.group(2).lower() if m.group(2) else None])
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"{value!r} is outside 8kbit..100Gbit")
    return rate


def parse_percent(value: object) -> float:
    """``10%``, ``0.5%`` or a number -> percent, in (0, 100], to 0.01 %.

    Raises:
        ValueError: not a percentage in range.
    """
    text = str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""
    try:
        pct = float(text[:-1] if text.endswith("%") else text)
    except ValueError:
        raise ValueError(f"{value!r} is not a percentage (e.g. 10%)") from None
    if not 0.01 <= pct <= 100:
        raise ValueError(f"{value!r} is outside 0.01%..100%")
    return round(pct, 2)


def parse_duration(value: object) -> float:
    """``100ms``, ``1s``, ``500us`` -> milliseconds, up to 60 s.

    Raises:
        ValueError: not a duration with its unit, or out of range.
    """
    m = _TIME.match(str(value).strip()) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"{value!r} is not a duration with its unit (e.g. 100ms, 1s, 500us)")
    ms = float(m.group(1)) * _TIME_UNITS[m.group(2)]
    if not 0 < ms <= MAX_DELAY_MS:
        raise ValueError(f"{value!r} is outside 1us..60s")
    return ms


def parse_mtu(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, str) and value.isdigit()):
        raise ValueError(f"{value!r} is not an MTU (a number of bytes)")
    mtu = int(value)
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise ValueError(f"{mtu} is outside {MIN_MTU}..{MAX_MTU}")
    return mtu


def format_rate(bps: int) -> str:
    for unit, size in (("Gbit", 10**9), ("Mbit", 10**6), ("kbit", 10**3)):
        if bps >= size and bps % size == 0:
            return f"{bps // size}{unit}"
    return f"{bps}bit"


@dataclass(frozen=True, order=True)
class LinkRef:
    kind: str  # LINK_KINDS
    name: str
    namespace: str = ""  # pods only

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.kind == "pod" else f"{self.kind}/{self.name}"


def parse_link(text: object, default_namespace: str = "default") -> LinkRef:
    """``node/NAME``, ``external/NAME``, ``pod/NAME`` (in ``default_namespace``),
    ``pod/NAMESPACE/NAME``, or a bare NAME (a node or external host: the caller resolves which).

    Raises:
        ValueError: another form, or a name that is not a DNS label (subdomain for pods).
    """
    if not isinstance(text, str) or not text:
        raise ValueError("a link is node/NAME, external/NAME or pod/[NAMESPACE/]NAME")
    parts = text.split("/")
    if len(parts) == 1:
        parts = ["", parts[0]]
    kind = parts[0]
    if kind not in ("",) + LINK_KINDS or len(parts) > (3 if kind == "pod" else 2):
        raise ValueError(f"{text!r}: a link is node/NAME, external/NAME or pod/[NAMESPACE/]NAME")
    if kind == "pod":
        namespace, name = (parts[1], parts[2]) if len(parts) == 3 else (default_namespace, parts[1])
        for value, check in ((namespace, validation.check_dns1123_label), (name, validation.check_dns1123_subdomain)):
            if (why := check(value)):
                raise ValueError(f"{text!r}: {why}")
        return LinkRef("pod", name, namespace)
    if (why := validation.check_dns1123_label(parts[1])):
        raise ValueError(f"{text!r}: {why}")
    return LinkRef(kind, parts[1])


@dataclass(frozen=True)
class Impairment:
    """Everything wrong with one link now; 0 means "not impaired" for each property. Bandwidth
    (and netem's delay etc.) apply to each direction, as a shaper at each end would; loss to
    what the host sends, as netem's loss on its eth0 (a ping through it loses that share)."""
    link: LinkRef
    bandwidth: int = 0  # bit/s
    loss: float = 0.0  # percent of the packets the host sends on the link
    delay: float = 0.0  # ms (sch_netem)
    jitter: float = 0.0  # ms, with delay (sch_netem)
    duplicate: float = 0.0  # percent (sch_netem)
    reorder: float = 0.0  # percent, with delay (sch_netem)
    mtu: int = 0  # bytes; 0: unchanged

    @property
    def needs_netem(self) -> bool:
        return any(getattr(self, f) for f in NETEM_FIELDS)

    def describe(self) -> str:
        words = []
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if value:
                shown = (format_rate(value) if f.name == "bandwidth" else f"{value:g}%" if f.name in
                         ("loss", "duplicate", "reorder") else f"{value:g}ms" if f.name in ("delay", "jitter")
                         else str(value))
                words.append(f"{f.name} {shown}")
        return ", ".join(words) or "nothing"

    def to_wire(self) -> dict:
        return {"link": str(self.link), **{f.name: getattr(self, f.name) for f in fields(self)[1:]}}


PARSERS = {"bandwidth": parse_rate, "loss": parse_percent, "delay": parse_duration, "jitter": parse_duration,
           "duplicate": parse_percent, "reorder": parse_percent, "mtu": parse_mtu}


def impairment(link: LinkRef, values: dict) -> Impairment:
    """An Impairment from user-written values (``{"bandwidth": "50Mbit", "loss": "10%"}``).

    Raises:
        ValueError: "FIELD: why" for the first bad value, an unknown field, nothing to impair, or
            jitter/reorder without delay (netem needs the delay to vary or reorder around).
    """
    parsed = {}
    for key, value in values.items():
        if key not in PARSERS:
            raise ValueError(f"{key}: unknown property (known: {', '.join(PARSERS)})")
        try:
            parsed[key] = PARSERS[key](value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    if not parsed:
        raise ValueError(f"nothing to impair: give at least one of {', '.join(PARSERS)} (heal undoes one)")
    for key in ("jitter", "reorder"):
        if key in parsed and "delay" not in parsed:
            raise ValueError(f"{key}: needs a delay (netem varies or reorders around it)")
    return Impairment(link, **parsed)


@dataclass(frozen=True)
class Partition:
    """Every frame between ``a`` and ``b`` (node or external host names) dropped, both ways, or
    only those from ``a`` to ``b`` when ``one_way``."""
    name: str
    a: tuple[str, ...]
    b: tuple[str, ...]
    one_way: bool = False

    def describe(self) -> str:
        arrow = "->" if self.one_way else "<->"
        return f"{','.join(self.a)} {arrow} {','.join(self.b)} dropped"

    def to_wire(self) -> dict:
        return {"name": self.name, "from": list(self.a), "to": list(self.b), "oneWay": self.one_way}


def partition(name: str, a: object, b: object, one_way: bool, hosts: list[str]) -> Partition:
    """A Partition between two sets of ``hosts`` (the cluster's nodes and external hosts).

    Raises:
        ValueError: a bad name, an empty set, an unknown host, or a host on both sides.
    """
    if (why := validation.check_dns1123_label(name)):
        raise ValueError(f"name: {why}")
    sides = []
    for key, side in (("from", a), ("to", b)):
        if isinstance(side, str):
            side = [s for s in side.split(",") if s]
        if not isinstance(side, (list, tuple)) or not side:
            raise ValueError(f"{key}: one or more node or external host names")
        for host in side:
            if host not in hosts:
                raise ValueError(f"{key}: {host!r} is not a node or external host of this cluster")
        sides.append(tuple(dict.fromkeys(side)))
    both = set(sides[0]) & set(sides[1])
    if both:
        raise ValueError(f"{', '.join(sorted(both))} on both sides of the partition")
    return Partition(name, sides[0], sides[1], bool(one_way))
