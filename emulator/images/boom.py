"""The e2e image ``regression-issue-74839`` (the "boom server" of conntrack.go's "should drop
INVALID conntrack entries"), rewritten for k8semu's pods.

It listens on :9000 and closes each accepted connection after 10 s. Beside it, a raw socket
watches the TCP segments that reach the pod's address: when a client's handshake completes it
logs "connection established" and injects one data segment ("boom!!!") whose sequence number
lies 100,000 bytes before the window, then logs "boom packet injected". Upstream, conntrack
marks that segment INVALID; if it reaches the client un-NATed, the client answers with a RST
that arrives here, logged as "ERROR: RST received" (upstream panics with that text). The e2e
test passes when no ERROR is logged.

Written here because the upstream image is a Go program in a container and there is no
container runtime; the standard library's raw sockets are enough (NET_RAW is a default
capability, as in containerd).
"""
from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import time

PORT = 9000
SYN, RST, PSH, ACK = 0x02, 0x04, 0x08, 0x10


def log(text: str) -> None:
    """Go's log.Println format: the e2e test greps these lines in the pod's log."""
    print(time.strftime("%Y/%m/%d %H:%M:%S ") + text, flush=True)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse(packet: bytes) -> dict | None:
    """An IPv4 packet from the raw socket: the TCP fields the boom server looks at."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 20:
        return None
    sport, dport, seq, ack, off_flags, window = struct.unpack("!HHIIHH", packet[ihl:ihl + 16])
    return {"src": socket.inet_ntoa(packet[12:16]), "sport": sport, "dport": dport, "seq": seq,
            "ack": ack, "flags": off_flags & 0x3F, "window": window}


def segment(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
            window: int, data: bytes) -> bytes:
    """A TCP header and payload with its checksum over the IPv4 pseudo-header; the kernel adds
    the IP header (no IP_HDRINCL)."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                         window, 0, 0)
    length = len(header) + len(data)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, length)
    csum = checksum(pseudo + header + data)
    return header[:16] + struct.pack("!H", csum) + header[18:] + data


class Prober:
    """Upstream's probe(): SYNs are remembered, the ACK that completes a handshake triggers the
    out-of-window segment, and a RST is the failure."""

    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.pending: dict[tuple[str, int], int] = {}

    def on_segment(self, tcp: dict) -> bytes | None:
        """The segment to inject for this one, if any.

        Raises:
            RuntimeError: a RST reached the server (upstream's panic).
        """
        if tcp["dport"] != PORT:
            return None
        key = (tcp["src"], tcp["sport"])
        if tcp["flags"] & SYN:
            self.pending[key] = tcp["seq"] + 1
            return None
        if tcp["flags"] & RST:
            raise RuntimeError("ERROR: RST received")
        if tcp["flags"] & ACK and key in self.pending:
            log("connection established")
            seq = self.pending.pop(key)
            return segment(self.ip, tcp["src"], PORT, tcp["sport"], tcp["ack"] - 100000, seq, PSH | ACK,
                           tcp["window"], b"boom!!!")
        return None


def probe(ip: str) -> None:
    log(f"probing {ip}")
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    raw.bind((ip, 0))
    prober = Prober(ip)
    while True:
        packet, addr = raw.recvfrom(65535)
        tcp = parse(packet)
        if tcp is None:
            continue
        try:
            bad = prober.on_segment(tcp)
        except RuntimeError as exc:
            log(str(exc))
            os._exit(2)  # upstream panics: the container exits and the kubelet restarts it
        if bad is not None:
            raw.sendto(bad, (addr[0], 0))
            log("boom packet injected")


def serve() -> None:
    listener = socket.create_server(("0.0.0.0", PORT), backlog=128)
    log(f"listen on 0.0.0.0:{PORT}")
    while True:
        conn, _ = listener.accept()
        threading.Timer(10.0, conn.close).start()  # upstream waits 10 s before closing


def main() -> int:
    ip = (os.environ.get("POD_IPS", "").split(",")[0] or os.environ.get("POD_IP")
          or os.environ.get("K8SEMU_POD_IP", ""))
    log(f"external ip: {ip}")
    threading.Thread(target=probe, args=(ip,), daemon=True).start()
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
