"""The boom server's packet logic (emulator/images/boom.py), as upstream's regression-issue-74839
probe does it: a SYN is remembered, the ACK completing the handshake gets one out-of-window
PSH|ACK segment back, a RST is the failure."""
from __future__ import annotations

import socket
import struct

import pytest

from emulator.images import boom


def ip_packet(src: str, dst: str, tcp: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, socket.inet_aton(src),
                       socket.inet_aton(dst)) + tcp


def client_segment(flags: int, seq: int, ack: int, sport: int = 40000) -> dict:
    tcp = boom.segment("10.244.2.5", "10.244.1.7", sport, boom.PORT, seq, ack, flags, 501, b"")
    return boom.parse(ip_packet("10.244.2.5", "10.244.1.7", tcp))


def test_the_handshakes_last_ack_gets_a_segment_before_the_window() -> None:
    prober = boom.Prober("10.244.1.7")
    assert prober.on_segment(client_segment(boom.SYN, 1000, 0)) is None
    bad = prober.on_segment(client_segment(boom.ACK, 1001, 500001))
    sport, dport, seq, ack, off_flags, window, _, _ = struct.unpack("!HHIIHHHH", bad[:20])
    want = (boom.PORT, 40000, 400001, 1001, boom.PSH | boom.ACK, 501)
    assert (sport, dport, seq, ack, off_flags & 0x3F, window) == want
    assert bad[20:] == b"boom!!!"
    pseudo = socket.inet_aton("10.244.1.7") + socket.inet_aton("10.244.2.5") + struct.pack("!BBH", 0, 6, len(bad))
    assert boom.checksum(pseudo + bad) == 0  # a correct checksum sums to all ones
    assert prober.on_segment(client_segment(boom.ACK, 1001, 500001)) is None  # once per connection


def test_the_sequence_number_wraps_as_a_32_bit_counter() -> None:
    prober = boom.Prober("10.244.1.7")
    prober.on_segment(client_segment(boom.SYN, 7, 0))
    seq = struct.unpack("!I", prober.on_segment(client_segment(boom.ACK, 8, 10))[4:8])[0]
    assert seq == (10 - 100000) % 2**32


def test_a_rst_is_the_failure_and_other_ports_are_ignored() -> None:
    prober = boom.Prober("10.244.1.7")
    assert prober.on_segment({**client_segment(boom.RST, 1, 0), "dport": 80}) is None
    with pytest.raises(RuntimeError, match="ERROR: RST received"):
        prober.on_segment(client_segment(boom.RST | boom.ACK, 1, 0))
