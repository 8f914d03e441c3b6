"""SPDY/3.1 as the API's port-forward reads it (api/portforward.py), against frames built the way
kubectl's spdystream builds them: a header zlib stream seeded with SPDY/3's dictionary."""
from __future__ import annotations

import zlib

import pytest

from emulator.api.portforward import (DICTIONARY, FIN, MAX_FRAME, SYN_REPLY, SYN_STREAM, Framer, ProtocolError,
                                      control, data)


def client_block(deflate, headers: dict[str, str]) -> bytes:
    raw = len(headers).to_bytes(4, "big") + b"".join(
        len(k).to_bytes(4, "big") + k.encode() + len(v).to_bytes(4, "big") + v.encode() for k, v in headers.items())
    return deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)


def syn_stream(deflate, stream: int, headers: dict[str, str]) -> bytes:
    return control(SYN_STREAM, 0, stream.to_bytes(4, "big") + bytes(6) + client_block(deflate, headers))


def test_the_dictionary_is_spdy3s() -> None:
    """1,423 bytes whose Adler-32 is the DICTID every SPDY/3 header stream names (0xe3c6a7c2)."""
    assert len(DICTIONARY) == 1423 and zlib.adler32(DICTIONARY) == 0xE3C6A7C2


def test_streams_headers_across_frames_split_anywhere() -> None:
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY)
    wire = syn_stream(deflate, 1, {"streamType": "error", "port": "80", "requestID": "0"}) + \
        syn_stream(deflate, 3, {"streamType": "data", "port": "80", "requestID": "0"}) + \
        data(3, b"GET / HTTP/1.1\r\n\r\n", fin=True)
    framer = Framer()
    frames = []
    for i in range(0, len(wire), 7):  # as the WebSocket delivers it: any cut
        frames += framer.feed(wire[i:i + 7])
    assert [(c, k, f) for c, k, f, _ in frames] == [(True, SYN_STREAM, 0), (True, SYN_STREAM, 0), (False, 3, FIN)]
    assert framer.headers(frames[0][3][10:]) == {"streamtype": "error", "port": "80", "requestid": "0"}
    assert framer.headers(frames[1][3][10:])["streamtype"] == "data"  # the same zlib stream goes on
    assert frames[2][3] == b"GET / HTTP/1.1\r\n\r\n"


def test_the_reply_is_readable_by_a_client_with_the_dictionary() -> None:
    framer, inflate = Framer(), zlib.decompressobj(zdict=DICTIONARY)
    for stream in (1, 3):
        reply = framer.reply(stream)
        assert reply[:4] == bytes([0x80, 3, 0, SYN_REPLY]) and int.from_bytes(reply[8:12], "big") == stream
        assert inflate.decompress(reply[12:]) == bytes(4)  # no headers


def test_what_is_not_kubectls_spdy_ends_the_session() -> None:
    with pytest.raises(ProtocolError):
        Framer().feed(bytes([0x80, 3, 0, 6, 0]) + (MAX_FRAME + 1).to_bytes(3, "big"))
    with pytest.raises(ProtocolError):
        Framer().feed(bytes([0x80, 2, 0, 6, 0, 0, 0, 4]) + bytes(4))  # SPDY/2
    with pytest.raises(ProtocolError):
        Framer().headers(b"not zlib at all")
