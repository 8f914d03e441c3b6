#!/usr/bin/env python3
"""Paced DNS load with per-query latency: ``dnsload.py SERVER NAME|unique RATE SECONDS``.

Sends RATE queries a second over UDP for SECONDS (bounded), each on schedule whatever the
replies do, and prints JSON with sent, answered, p50 and p99 latency in ms. NAME ``unique``
asks a different, nonexistent cluster name each time (every query a cache miss).
"""
import asyncio
import json
import socket
import sys
import time

import dns.message


async def main(server: str, name: str, rate: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect((server, 53))
    sent: dict[int, float] = {}
    latencies: list[float] = []
    total = int(rate * seconds)

    def readable() -> None:
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            qid = int.from_bytes(data[:2], "big")
            start = sent.pop(qid, None)
            if start is not None:
                latencies.append(time.perf_counter() - start)

    loop.add_reader(sock.fileno(), readable)
    begin = time.perf_counter()
    for i in range(total):
        qname = f"u{i}.default.svc.cluster.local" if name == "unique" else name
        wire = bytearray(dns.message.make_query(qname, "A").to_wire())
        qid = i % 65536
        wire[:2] = qid.to_bytes(2, "big")
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[qid] = time.perf_counter()
        try:
            sock.send(wire)
        except BlockingIOError:
            pass
    await asyncio.sleep(0.5)
    loop.remove_reader(sock.fileno())
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else None
    return {"sent": total, "answered": len(latencies), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


if __name__ == "__main__":
    server, name, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(main(server, name, rate, seconds))))
