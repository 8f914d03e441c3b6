"""The ``portforward`` subresource of pods: ``kubectl port-forward``.

kubectl (1.31 and later) opens a WebSocket with the subprotocol ``SPDY/3.1+portforward.k8s.io``
and speaks SPDY/3.1 inside it, as it speaks to a kubelet; kube-apiserver tunnels it. For each
connection to the local port it opens two SPDY streams with the headers ``streamtype`` (error,
then data), ``port`` and ``requestid``; the server replies to each, connects to that port on
localhost inside the pod's network namespace (as the kubelet does) and copies bytes both ways;
when the pod's side ends it closes the data stream, then the error stream (kubectl waits for
both). A connection the pod refuses gets the kubelet's message on the error stream.

Why written here: no maintained Python SPDY library exists (PyPI has none for SPDY/3.1), and
the server needs only what kubectl sends: frames, the two zlib header streams with SPDY's
dictionary, SYN_STREAM/SYN_REPLY, data with FIN, RST_STREAM, PING, GOAWAY. Flow control
(WINDOW_UPDATE) is not enforced, as spdystream, kubectl's side, does not enforce it either.
The direct SPDY upgrade (kubectl's fallback) is not served.
"""
from __future__ import annotations

import asyncio
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import WSMsgType, web

from emulator.api import logs, status
from emulator.api.status import ApiError
from emulator.runtime.healthcheck import socket_in

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FIN = 0x01
MAX_FRAME = 1 << 20  # kubectl's frames are 32 KiB at most; anything far larger is not kubectl
CHUNK = 32768

# SPDY/3's header-compression dictionary (draft 3, section 2.6.10.1): length-prefixed words,
# then a run of common values. Both zlib streams of a session start from it.
_WORDS = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
          "accept-ranges age allow authorization cache-control connection content-base content-encoding "
          "content-language content-length content-location content-md5 content-range content-type date etag "
          "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
          "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
          "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
          "method get status").split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
                                          "keep-alive", "origin"]
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
         "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
         "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
         "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
         "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(len(w).to_bytes(4, "big") + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    """Not SPDY/3.1 as kubectl speaks it: the session ends."""


class Framer:
    """One session's SPDY/3.1 frames: bytes in, frames out; header blocks through the session's
    two zlib streams (one each way, kept for the whole session, as the protocol requires)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[tuple[bool, int, int, bytes]]:
        """The whole frames received so far: (control, type or stream id, flags, payload)."""
        self.buffer += data
        frames = []
        while len(self.buffer) >= 8:
            length = int.from_bytes(self.buffer[5:8], "big")
            if length > MAX_FRAME:
                raise ProtocolError(f"a frame of {length} bytes")
            if len(self.buffer) < 8 + length:
                break
            head, payload = bytes(self.buffer[:8]), bytes(self.buffer[8:8 + length])
            del self.buffer[:8 + length]
            if head[0] & 0x80:
                if int.from_bytes(head[0:2], "big") & 0x7FFF != VERSION:
                    raise ProtocolError("not SPDY version 3")
                frames.append((True, int.from_bytes(head[2:4], "big"), head[4], payload))
            else:
                frames.append((False, int.from_bytes(head[0:4], "big") & 0x7FFFFFFF, head[4], payload))
        return frames

    def headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self.inflate.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"header block: {exc}") from None
        out, pos = {}, 4
        try:
            for _ in range(int.from_bytes(raw[:4], "big")):
                size = int.from_bytes(raw[pos:pos + 4], "big")
                name, pos = raw[pos + 4:pos + 4 + size], pos + 4 + size
                size = int.from_bytes(raw[pos:pos + 4], "big")
                value, pos = raw[pos + 4:pos + 4 + size], pos + 4 + size
                out[name.decode().lower()] = value.decode()
        except UnicodeDecodeError:
            raise ProtocolError("header block: not text") from None
        return out

    def reply(self, stream: int) -> bytes:
        """SYN_REPLY with no headers: the stream is accepted (the kubelet sends the same)."""
        block = self.deflate.compress((0).to_bytes(4, "big")) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        return control(SYN_REPLY, 0, stream.to_bytes(4, "big") + block)


def control(kind: int, flags: int, payload: bytes) -> bytes:
    return bytes([0x80, VERSION]) + kind.to_bytes(2, "big") + bytes([flags]) + len(payload).to_bytes(3, "big") + payload


def data(stream: int, payload: bytes, fin: bool = False) -> bytes:
    return (stream & 0x7FFFFFFF).to_bytes(4, "big") + bytes([FIN if fin else 0]) + \
        len(payload).to_bytes(3, "big") + payload


@dataclass
class Forward:
    """One forwarded connection: kubectl's error and data streams and the pod's socket."""

    port: int
    error: int = 0
    data: int = 0
    writer: asyncio.StreamWriter | None = None
    tasks: list = field(default_factory=list)


async def serve(request: web.Request, pod_info: Callable[[], Any]) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(400, "BadRequest", f"port-forward is served over WebSocket ({PROTOCOL}, as kubectl 1.31 and "
                                          "later sends it); a direct SPDY upgrade is not served")
    loop = asyncio.get_running_loop()
    pod = await logs.pod_record(pod_info)
    if pod.get("finished"):
        raise status.bad_request(f"unable to forward port because pod is not running. Current status={pod['finished']}")
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=MAX_FRAME + 8)
    if ws.can_prepare(request).protocol != PROTOCOL:
        raise status.bad_request(f"port-forward needs the WebSocket subprotocol {PROTOCOL}")
    await ws.prepare(request)
    framer = Framer()
    forwards: dict[str, Forward] = {}  # requestid -> its streams
    by_stream: dict[int, Forward] = {}

    async def pod_to_client(fwd: Forward, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(CHUNK):
            await ws.send_bytes(data(fwd.data, chunk))
        await ws.send_bytes(data(fwd.data, b"", fin=True))
        await ws.send_bytes(data(fwd.error, b"", fin=True))  # kubectl waits for the error stream's end

    async def open_stream(stream: int, headers: dict[str, str]) -> None:
        try:
            port = int(headers.get("port", ""))
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await ws.send_bytes(control(RST_STREAM, 0, stream.to_bytes(4, "big") + (1).to_bytes(4, "big")))
            return
        fwd = forwards.setdefault(headers.get("requestid", ""), Forward(port))
        by_stream[stream] = fwd
        await ws.send_bytes(framer.reply(stream))
        if headers.get("streamtype") == "error":
            fwd.error = stream
            return
        fwd.data = stream
        sock = await loop.run_in_executor(None, socket_in, pod["netns"])
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
        except OSError as exc:
            sock.close()
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            message = (f"error forwarding port {port} to pod {pod['name']}, uid : failed to connect to localhost:{port} "
                       f"inside namespace \"{pod['netns']}\", IPv4: dial tcp4 127.0.0.1:{port}: connect: {reason}")
            await ws.send_bytes(data(fwd.error, message.encode(), fin=True))
            await ws.send_bytes(data(fwd.data, b"", fin=True))
            return
        reader, fwd.writer = await asyncio.open_connection(sock=sock)
        fwd.tasks.append(asyncio.ensure_future(pod_to_client(fwd, reader)))

    def end(fwd: Forward) -> None:
        for task in fwd.tasks:
            task.cancel()
        if fwd.writer is not None:
            fwd.writer.close()

    try:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            for is_control, kind, flags, payload in framer.feed(msg.data):
                if not is_control:
                    fwd = by_stream.get(kind)
                    if fwd is not None and kind == fwd.data and fwd.writer is not None:
                        if payload:
                            fwd.writer.write(payload)
                            await fwd.writer.drain()
                        if flags & FIN and fwd.writer.can_write_eof():
                            fwd.writer.write_eof()
                elif kind == SYN_STREAM:
                    await open_stream(int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF, framer.headers(payload[10:]))
                elif kind == HEADERS:
                    framer.headers(payload[4:])  # read to keep the zlib stream in step; nothing to do
                elif kind == RST_STREAM:
                    fwd = by_stream.get(int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF)
                    if fwd is not None:
                        end(fwd)
                elif kind == PING:
                    await ws.send_bytes(control(PING, 0, payload))
                elif kind == GOAWAY:
                    return ws
    except (ProtocolError, ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        for fwd in forwards.values():
            end(fwd)
        await ws.close()
    return ws
