"""Negative answers for the cluster zone, read and written on the wire without dnspython.

Why: a name the cache has never seen used to walk the whole plugin chain with dnspython (parse,
resolve, SOA, serialise: ~350 µs), 35 times slower than dnsmasq. A query for a cluster name
that does not exist (NXDOMAIN) or has no data of its type (NODATA) is answered here from the
query's own bytes plus the zone's SOA: the header, the question copied as asked, the SOA
compressed against the question, the OPT record when the query had one. Which answer is right
still comes from ``records.resolve`` (the kubernetes plugin's rules), and the cache and metrics
plugins still see the query (``server`` records both); only the parsing and the building are
skipped. Anything unusual (another opcode or class, more than one question, records in the
query other than a bare OPT, compression in the question, a name outside the zone) returns
None and takes the full path. ``tests/unit/test_dns_wire.py`` checks each answer against the
full path's.
"""
from __future__ import annotations

import struct
import time
from collections import defaultdict
from dataclasses import dataclass

QR, AA, RD, RA = 0x8000, 0x0400, 0x0100, 0x0080
OPCODE_MASK = 0x7800
TYPE_OPT, CLASS_IN, TYPE_SOA = 41, 1, 6
NXDOMAIN = 3
OUR_PAYLOAD = 8192  # what dnspython's make_response advertises, so both paths agree
TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
         33: "SRV", 35: "NAPTR", 255: "ANY", 65: "HTTPS", 64: "SVCB", 257: "CAA"}


@dataclass(frozen=True)
class Question:
    """What the fast path needs of a query: its name (lower case, with the final dot), type,
    and where its question section ends."""
    name: str
    qtype: str
    end: int  # offset just past QTYPE/QCLASS
    labels_at: tuple[int, ...]  # offset of each label in the question name (for compression)
    edns: bool


def parse(data: bytes) -> Question | None:
    """The single question of a plain query, or None for anything the fast path does not take."""
    if len(data) < 17:
        return None
    flags, qd, an, ns, ar = struct.unpack_from("!HHHHH", data, 2)
    if flags & (QR | OPCODE_MASK) or qd != 1 or an or ns or ar > 1:
        return None
    pos, labels, starts = 12, [], []
    while True:
        if pos >= len(data):
            return None
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length > 63 or pos + 1 + length > len(data):
            return None  # a compression pointer or a truncated name: the full path decides
        starts.append(pos)
        labels.append(data[pos + 1:pos + 1 + length])
        pos += 1 + length
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    pos += 4
    if qclass != CLASS_IN or qtype not in TYPES:
        return None
    edns = False
    if ar:  # only a bare OPT: root name, type 41, no options
        if data[pos:pos + 3] != b"\x00\x00\x29" or len(data) != pos + 11 or data[pos + 9:pos + 11] != b"\x00\x00":
            return None
        edns = True
    elif pos != len(data):
        return None
    try:
        name = b".".join(labels).decode("ascii").lower() + "."
    except UnicodeDecodeError:
        return None
    if any(c in name for c in "\\ ()\";") or not labels:
        return None  # a name the text form would escape: the full path decides
    return Question(name, TYPES[qtype], pos, tuple(starts), edns)


@dataclass(frozen=True)
class Soa:
    """The zone's SOA as the full path writes it: ``ns.dns.<zone> hostmaster.<zone> serial
    7200 1800 86400 ttl``."""
    zone: str
    serial: int
    minimum: int

    def record(self, owner_at: int, ttl: int) -> bytes:
        pointer = struct.pack("!H", 0xC000 | owner_at)
        rdata = (b"\x02ns\x03dns" + pointer + b"\x0ahostmaster" + pointer
                 + struct.pack("!IIIII", self.serial, 7200, 1800, 86400, self.minimum))
        return pointer + struct.pack("!HHIH", TYPE_SOA, CLASS_IN, ttl, len(rdata)) + rdata


def negative(data: bytes, q: Question, rcode: int, soa: Soa, ttl: int) -> bytes | None:
    """The authoritative NXDOMAIN (rcode 3) or NODATA (rcode 0) answer to ``data``."""
    zone_labels = len(soa.zone.rstrip(".").split("."))
    if len(q.labels_at) < zone_labels:
        return None
    owner_at = q.labels_at[len(q.labels_at) - zone_labels]
    if owner_at > 0x3FFF:
        return None
    flags = QR | AA | RA | (struct.unpack_from("!H", data, 2)[0] & RD) | rcode
    header = data[:2] + struct.pack("!HHHHH", flags, 1, 0, 1, 1 if q.edns else 0)
    opt = b"\x00" + struct.pack("!HHIH", TYPE_OPT, OUR_PAYLOAD, 0, 0) if q.edns else b""
    return header + data[12:q.end] + soa.record(owner_at, ttl) + opt


class FastCache:
    """Answers already on the wire, keyed by the query's bytes after its ID.

    The cache plugin's answers, re-serialised at most once a second (so TTLs still count down),
    are replayed with the new query's ID patched in: no parsing, no building, which is what
    makes a cached name several times faster in Python. Anything unusual (log plugin, TCP,
    truncation, more than one question) takes the full path."""

    def __init__(self) -> None:
        self.entries: dict[bytes, tuple[bytes, float, tuple]] = {}
        self.counts: dict[tuple, int] = defaultdict(int)

    def get(self, data: bytes) -> bytes | None:
        hit = self.entries.get(data[2:])
        if hit is None:
            return None
        wire, valid_until, labels = hit
        if time.monotonic() >= valid_until:
            self.entries.pop(data[2:], None)
            return None
        self.counts[labels] += 1
        return data[:2] + wire

    def put(self, data: bytes, wire: bytes, ttl: int, labels: tuple) -> None:
        if len(self.entries) > 10000:
            self.entries.clear()
        self.entries[data[2:]] = (wire[2:], time.monotonic() + min(1.0, ttl), labels)
