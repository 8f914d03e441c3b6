"""The wire fast path answers exactly as the full plugin chain does, or leaves the query to it."""
from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from emulator.dns import wire
from emulator.dns.server import DNSServer
from emulator.model.corefile import default_corefile

from tests.unit.test_dns import SNAPSHOT

NEGATIVE = ["nope.default.svc.cluster.local.", "web.nope.svc.cluster.local.", "x.y.z.cluster.local.",
            "Nope.Default.SVC.cluster.local.", "_http._udp.web.default.svc.cluster.local.",
            "a.b.c.d.web.default.svc.cluster.local.", "nope.svc.cluster.local.", "cluster.local.",
            "svc.cluster.local.", "shop.svc.cluster.local.", "web.default.svc.cluster.local.",
            "db-9.db.shop.svc.cluster.local.", "10-244-2-7.shop.pod.cluster.local.",
            "bad-ip.shop.pod.cluster.local.", "dns-version.cluster.local."]
TYPES = ["A", "AAAA", "SRV", "TXT", "MX", "PTR"]


def server(tmp_path: Path, corefile: str | None = None) -> DNSServer:
    (tmp_path / "Corefile").write_text(corefile or default_corefile("cluster.local"))
    (tmp_path / "snap.json").write_text(json.dumps(SNAPSHOT))
    return DNSServer(str(tmp_path / "Corefile"), str(tmp_path / "snap.json"))


def query(name: str, qtype: str, edns: bool, rd: bool) -> bytes:
    q = dns.message.make_query(name, qtype, use_edns=0 if edns else False, payload=1232)
    q.flags = dns.flags.RD if rd else 0
    q.id = 4242
    return q.to_wire()


def parsed(data: bytes) -> tuple:
    m = dns.message.from_wire(data)
    return (m.id, m.flags, m.rcode(), m.edns, m.payload if m.edns >= 0 else None,
            [r.to_text() for r in m.question], [r.to_text() for r in m.answer],
            [r.to_text() for r in m.authority], [r.to_text() for r in m.additional])


def forget(srv: DNSServer) -> None:
    """Empty both caches, so each comparison starts from a name never asked."""
    srv.fast.entries.clear()
    for block in srv.blocks:
        block.cache.entries.clear()


def test_negative_answers_are_those_of_the_full_chain(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fast, full = server(tmp_path / "a"), server(tmp_path / "b")
    full.started = fast.started  # the SOA serial is the start time: the same for both
    taken = 0
    for name, qtype, edns, rd in itertools.product(NEGATIVE, TYPES, (False, True), (False, True)):
        forget(fast)
        forget(full)
        data = query(name, qtype, edns, rd)
        expected = asyncio.run(full.answer(data, "udp", "127.0.0.1:1"))
        out = fast.fast_negative(data)
        if out is None:  # left to the full path: only positive answers are
            assert dns.message.from_wire(expected).answer, (name, qtype)
            continue
        taken += 1
        assert parsed(out) == parsed(expected), (name, qtype, edns, rd)
    assert taken > 300  # the fast path took the negative answers, not only a few


def test_a_repeat_comes_from_the_cache_with_its_ttl_counting_down(tmp_path: Path) -> None:
    srv = server(tmp_path)
    data = query("nope.default.svc.cluster.local.", "A", False, True)
    assert srv.fast_negative(data) is not None
    assert srv.fast_negative(data) is None  # the cache plugin has it now: the full path answers
    again = dns.message.from_wire(asyncio.run(srv.answer(data, "udp", "127.0.0.1:1")))
    assert again.rcode() == dns.rcode.NXDOMAIN and again.authority[0].ttl <= 30


@pytest.mark.parametrize("data", [
    b"", b"\x00" * 11, b"\x12\x34\x81\x00" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x03web\x00\x00\x01\x00\x01",
    b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x03web\x00\x00\x01\x00\x01",  # two questions claimed
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # a pointer as the name
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fweb",  # truncated name
])
def test_malformed_or_unusual_queries_go_to_the_full_path(data: bytes) -> None:
    assert wire.parse(data) is None


def test_the_metrics_count_what_the_fast_path_answered(tmp_path: Path) -> None:
    srv = server(tmp_path)
    for i in range(3):
        assert srv.fast_negative(query(f"n{i}.default.svc.cluster.local.", "A", False, True))
    text = srv.metrics.render(None, dict(srv.negative_counts))
    assert 'coredns_dns_responses_total{rcode="NXDOMAIN",server="dns://:53",zone="."} 3' in text
    assert 'coredns_cache_misses_total{server="dns://:53"} 3' in text


def test_blocks_with_log_or_rewrite_keep_the_full_path(tmp_path: Path) -> None:
    text = default_corefile("cluster.local").replace("    errors\n", "    errors\n    log\n")
    srv = server(tmp_path, text)
    assert srv.fast_negative(query("nope.default.svc.cluster.local.", "A", False, True)) is None
