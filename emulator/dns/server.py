"""The DNS server that runs in each ``coredns`` pod.

    python -m emulator.dns.server -conf COREFILE -snapshot CLUSTER.json

Serves UDP and TCP on each server block's port with asyncio and dnspython. A query walks the
block's plugins in CoreDNS's order (rewrite, log, cache, hosts, kubernetes, forward), answers
are shuffled by loadbalance, and too-large UDP answers are truncated with TC set, honouring the
client's EDNS0 buffer size. health (:8080/health), ready (:8181/ready) and prometheus
(:9153/metrics) are plain HTTP endpoints. The cluster snapshot is re-read when it changes (the
manager rewrites it atomically), so a new Service answers within a second, without a restart;
``reload`` does the same for the Corefile, keeping the old configuration if the new one fails.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from emulator import __version__
from emulator.dns import plugins, wire
from emulator.dns.wire import FastCache
from emulator.images import acknowledge
from emulator.model.corefile import CorefileError, ServerBlock, parse
from emulator.dns.records import Snapshot, cluster_zone, resolve

SNAPSHOT_POLL = 0.1


class Metrics:
    """Counters exposed in Prometheus' text format under CoreDNS's metric names."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))

    def inc(self, name: str, **labels: str) -> None:
        with self.lock:
            self.counters[name][tuple(sorted(labels.items()))] += 1

    def render(self, fast: dict[tuple, int] | None = None, negative: dict[tuple, int] | None = None) -> str:
        # a gauge every CoreDNS exports from its start: a replica that has answered nothing yet
        # still shows what it is (its counters appear with their first increment, as Prometheus'
        # client leaves a labelled counter out until then)
        lines = ["# TYPE coredns_build_info gauge",
                 f'coredns_build_info{{goversion="",revision="k8semu",version="{__version__}"}} 1']
        with self.lock:
            counters = {k: dict(v) for k, v in self.counters.items()}
        for (server, zone, qtype, rcode, cached), count in (negative or {}).items():  # the wire fast path
            series = [("coredns_dns_requests_total",
                       {"server": server, "zone": zone, "proto": "udp", "family": "1", "type": qtype}),
                      ("coredns_dns_responses_total", {"server": server, "zone": zone, "rcode": rcode})]
            if cached:
                series.append(("coredns_cache_misses_total", {"server": server}))
            for name, labels in series:
                key = tuple(sorted(labels.items()))
                counters.setdefault(name, {})[key] = counters.get(name, {}).get(key, 0) + count
        for (server, zone, qtype), count in (fast or {}).items():  # answered by the fast path
            requests = {"server": server, "zone": zone, "proto": "udp", "family": "1", "type": qtype}
            for name, labels in (("coredns_dns_requests_total", requests),
                                 ("coredns_cache_hits_total", {"server": server, "type": "success"})):
                key = tuple(sorted(labels.items()))
                counters.setdefault(name, {})[key] = counters.get(name, {}).get(key, 0) + count
        for name, series in sorted(counters.items()):
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(series.items()):
                text = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{text}}} {value:g}")
        return "\n".join(lines) + "\n"


class Block:
    """One server block, configured: what each plugin needs, in chain order."""

    def __init__(self, block: ServerBlock, file: str) -> None:
        self.zones, self.port, self.source = block.zones, block.port, block
        self.log = block.plugin("log") is not None
        self.errors = block.plugin("errors") is not None
        self.loadbalance = block.plugin("loadbalance") is not None
        d = block.plugin("cache")
        self.cache = plugins.Cache.from_directive(d, file) if d else None
        self.rewrites = [plugins.Rewrite.from_directive(x, file) for x in block.plugins if x.name == "rewrite"]
        d = block.plugin("hosts")
        self.hosts = plugins.Hosts.from_directive(d, block.zones, file) if d else None
        d = block.plugin("kubernetes")
        self.kube, self.kube_fallthrough = plugins.kubernetes_options(d, block.zones, file) if d else (None, [])
        d = block.plugin("forward")
        self.forward_from, self.upstreams = ".", []
        if d:
            if len(d.args) < 2:
                raise CorefileError(file, d.line, "forward: expected FROM and at least one TO")
            self.forward_from = d.args[0] if d.args[0].endswith(".") else d.args[0] + "."
            for to in d.args[1:]:
                if to.startswith("/"):
                    self.upstreams += read_resolv_conf(to)
                else:
                    self.upstreams.append(to.removeprefix("dns://"))
        self.ports = {int(x.args[0].rsplit(":", 1)[1]) if x.args else default
                      for x, default in ((block.plugin("health"), 8080), (block.plugin("ready"), 8181),
                                         (block.plugin("prometheus"), 9153)) if x}


def read_resolv_conf(path: str) -> list[str]:
    try:
        return [line.split()[1] for line in open(path) if line.startswith("nameserver") and len(line.split()) > 1]
    except OSError:
        return []


class DNSServer:
    def __init__(self, conf: str, snapshot: str) -> None:
        self.conf_path, self.snapshot_path = Path(conf), Path(snapshot)
        self.blocks = self.load_config()
        self.conf_mtime = self.conf_path.stat().st_mtime
        self.snapshot = Snapshot({})
        self.snap_mtime = 0.0
        self.metrics = Metrics()
        self.fast = FastCache()
        self.negative_counts: dict[tuple, int] = defaultdict(int)
        self.soas: dict[tuple, dns.rrset.RRset] = {}
        self.soa_wires: dict[tuple, wire.Soa] = {}
        self.started = time.time()
        self.ready = False
        self.read_snapshot()

    def load_config(self) -> list[Block]:
        """Parse and configure everything, or raise: never serve a half-read Corefile."""
        return [Block(b, str(self.conf_path)) for b in parse(self.conf_path.read_text(), str(self.conf_path))]

    def read_snapshot(self) -> None:
        try:
            mtime = self.snapshot_path.stat().st_mtime
            if mtime != self.snap_mtime:
                self.snapshot = Snapshot(json.loads(self.snapshot_path.read_text()))
                self.snap_mtime = mtime
                acknowledge(self.snapshot.data.get("generation"))
                self.fast.entries.clear()
                for block in self.blocks:  # cluster answers changed: drop what we cached of them
                    if block.cache and block.kube:
                        for key in [k for k in block.cache.entries if plugins.in_zones(k[0], block.kube.zones)]:
                            del block.cache.entries[key]
        except (OSError, ValueError):
            pass

    def block_for(self, name: str) -> Block | None:
        best, length = None, -1
        for block in self.blocks:
            for zone in block.zones:
                if (zone == "." or name == zone or name.endswith("." + zone)) and len(zone) > length:
                    best, length = block, len(zone)
        return best

    def fast_negative(self, data: bytes) -> bytes | None:
        """NXDOMAIN or NODATA for a cluster name, built on the wire (``wire``), or None to take
        the full path. The kubernetes plugin's rules decide (``resolve``); the cache plugin
        remembers the answer so a repeat sees its TTL count down; only blocks without log and
        rewrite, and names no hosts block or fallthrough claims, come here."""
        q = wire.parse(data)
        if q is None:
            return None
        block = self.block_for(q.name)
        if block is None or block.kube is None or block.log or block.rewrites:
            return None
        if block.hosts and plugins.in_zones(q.name, block.hosts.zones):
            return None
        zone = cluster_zone(block.kube)
        if not (q.name == zone or q.name.endswith("." + zone)):
            return None
        key = (q.name, q.qtype)
        if block.cache and key in block.cache.entries:
            return None
        ans = resolve(self.snapshot, q.name, q.qtype, block.kube)
        if ans is None or ans.records or ans.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return None
        if ans.rcode == dns.rcode.NXDOMAIN and plugins.in_zones(q.name, block.kube_fallthrough):
            return None
        ttl = block.kube.ttl
        if block.cache and 0 < min(ttl, block.cache.denial_ttl):
            ttl = min(ttl, block.cache.denial_ttl)
        soa = self.soa_wires.get((zone, block.kube.ttl))
        if soa is None:
            soa = self.soa_wires[(zone, block.kube.ttl)] = wire.Soa(zone, int(self.started), block.kube.ttl)
        out = wire.negative(data, q, ans.rcode, soa, ttl)
        if out is None:
            return None
        if block.cache:
            block.cache.put_wire(key, out, ttl)
        label = next((z for z in block.zones if z == "." or q.name.endswith(z)), ".")
        self.negative_counts[(f"dns://:{block.port}", label, q.qtype, dns.rcode.to_text(ans.rcode),
                              block.cache is not None)] += 1
        return out

    async def answer(self, wire: bytes, proto: str, client: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        q = query.question[0]
        name, qtype = q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)
        block = self.block_for(name)
        start = time.perf_counter()
        response = await self.resolve(block, query, name, qtype) if block else self.refused(query)
        zone = next((z for z in (block.zones if block else []) if z == "." or name.endswith(z)), ".")
        self.metrics.inc("coredns_dns_requests_total", server=f"dns://:{block.port if block else 53}",
                         zone=zone, proto=proto, family="1", type=qtype)
        self.metrics.inc("coredns_dns_responses_total", server=f"dns://:{block.port if block else 53}",
                         zone=zone, rcode=dns.rcode.to_text(response.rcode()))
        if block and block.log:
            ms = (time.perf_counter() - start) * 1000
            print(f'[INFO] {client} - {query.id} "{qtype} IN {name} {proto} {len(wire)} '
                  f'{bool(query.ednsflags & dns.flags.DO)} {query.payload}" '
                  f'{dns.rcode.to_text(response.rcode())} {dns.flags.to_text(response.flags)} '
                  f'{ms:.6f}ms', flush=True)
        limit = max(512, query.payload if query.edns >= 0 else 512) if proto == "udp" else 65535
        try:
            out = response.to_wire(max_size=limit)
            ttl = min([r.ttl for r in response.answer + response.authority] or [0])
            if proto == "udp" and block and block.cache and not block.log and ttl > 0 and len(query.question) == 1:
                self.fast.put(wire, out, ttl, (f"dns://:{block.port}", zone, qtype))
            return out
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.set_rcode(response.rcode())
            truncated.flags |= dns.flags.TC | (response.flags & dns.flags.AA)
            return truncated.to_wire(max_size=limit)

    def soa(self, zone: str, ttl: int) -> dns.rrset.RRset:
        """The zone's SOA, built once (parsing its text form per answer cost a third of a miss)."""
        key = (zone, ttl)
        if key not in self.soas:
            self.soas[key] = dns.rrset.from_text(zone, ttl, "IN", "SOA", f"ns.dns.{zone} hostmaster.{zone} "
                                                 f"{int(self.started)} 7200 1800 86400 {ttl}")
        return self.soas[key]

    def refused(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.REFUSED)
        return response

    async def resolve(self, block: Block, query: dns.message.Message, name: str, qtype: str) -> dns.message.Message:
        original = name
        for rw in block.rewrites:
            new = rw.apply(name)
            if new:
                name = new
                break
        key = (name, qtype)
        if block.cache:
            hit = block.cache.get(key)
            if hit:
                self.metrics.inc("coredns_cache_hits_total", server=f"dns://:{block.port}", type="success")
                return self.finish(block, query, hit[0], original, name, ttl=hit[1])
            self.metrics.inc("coredns_cache_misses_total", server=f"dns://:{block.port}")
        response = await self.lookup(block, query, name, qtype)
        capped = block.cache.put(key, response) if block.cache else None
        # Like CoreDNS, a miss is answered with the capped TTL too (no 3600 -> 30 jump).
        return self.finish(block, query, response, original, name, ttl=capped)

    def finish(self, block: Block, query: dns.message.Message, source: dns.message.Message,
               original: str, name: str, ttl: int | None = None) -> dns.message.Message:
        """Copy an answer into a response to this query: ids, names rewritten back, TTLs."""
        response = dns.message.make_response(query)
        response.set_rcode(source.rcode())
        response.flags |= source.flags & (dns.flags.AA | dns.flags.RA)
        for section, target in ((source.answer, response.answer), (source.authority, response.authority)):
            for rrset in section:
                owner = original if rrset.name.to_text().lower() == name else rrset.name.to_text()
                copy = dns.rrset.from_rdata_list(owner, min(rrset.ttl, ttl) if ttl is not None else rrset.ttl, list(rrset))
                target.append(copy)
        if block.loadbalance:
            plugins.shuffle_addresses(response)
        return response

    async def lookup(self, block: Block, query: dns.message.Message, name: str, qtype: str,
                     depth: int = 0) -> dns.message.Message:
        result = dns.message.make_response(query)
        result.flags |= dns.flags.RA
        if block.hosts and plugins.in_zones(name, block.hosts.zones):
            found = block.hosts.lookup(name, qtype)
            if found is not None:
                result.flags |= dns.flags.AA
                result.answer += found
                return result
            if not plugins.in_zones(name, block.hosts.fallthrough):
                result.set_rcode(dns.rcode.NXDOMAIN)
                return result
        if block.kube is not None and plugins.in_zones(name, block.kube.zones):
            ans = resolve(self.snapshot, name, qtype, block.kube)
            falls = (ans is None or ans.rcode == dns.rcode.NXDOMAIN) and plugins.in_zones(name, block.kube_fallthrough)
            if not falls:
                result.flags |= dns.flags.AA
                result.set_rcode(dns.rcode.NXDOMAIN if ans is None else ans.rcode)
                result.answer += ans.records if ans else []
                cname = next((r for r in result.answer if r.rdtype == dns.rdatatype.CNAME), None)
                if cname is not None and qtype in ("A", "AAAA") and depth < 8:
                    # ExternalName: CoreDNS resolves the target as well, through the same chain
                    target = cname[0].target.to_text().lower()
                    chased = await self.lookup(block, query, target, qtype, depth + 1)
                    result.answer += chased.answer
                if not result.answer:  # negative answers carry the zone's SOA (negative caching)
                    result.authority.append(self.soa(cluster_zone(block.kube), block.kube.ttl))
                return result
        if block.upstreams and plugins.in_zones(name, [block.forward_from]):
            return await self.forward(block, query, name)
        result.set_rcode(dns.rcode.SERVFAIL if block.upstreams else dns.rcode.REFUSED)
        return result

    async def forward(self, block: Block, query: dns.message.Message, name: str) -> dns.message.Message:
        upstreams = list(block.upstreams)
        random.shuffle(upstreams)
        ask = dns.message.make_query(name, query.question[0].rdtype, use_edns=0, payload=4096)
        for upstream in upstreams:
            host, _, port = upstream.partition(":")
            self.metrics.inc("coredns_forward_requests_total", to=upstream)
            try:
                reply = await dns.asyncquery.udp(ask, host, timeout=2, port=int(port or 53))
                if reply.flags & dns.flags.TC:
                    reply = await dns.asyncquery.tcp(ask, host, timeout=2, port=int(port or 53))
                return reply
            except (dns.exception.DNSException, OSError):
                continue
        failed = dns.message.make_response(query)
        failed.set_rcode(dns.rcode.SERVFAIL)
        return failed

    async def watch(self) -> None:
        while True:
            self.read_snapshot()
            try:
                mtime = self.conf_path.stat().st_mtime
                if mtime != self.conf_mtime and any(b.source.plugin("reload") for b in self.blocks):
                    self.conf_mtime = mtime
                    self.blocks = self.load_config()
                    print("[INFO] Reloading complete", flush=True)
            except (OSError, CorefileError) as exc:
                print(f"[ERROR] Reload failed, keeping the running configuration: {exc}", flush=True)
            await asyncio.sleep(SNAPSHOT_POLL)


class UDPServer:
    """One UDP port, read in batches straight from a non-blocking socket.

    Why not asyncio's datagram transport: it wakes the loop and runs its own bookkeeping per
    packet, which at tens of thousands of queries a second cost as much as answering them. Here
    one wake-up drains up to BATCH queries; answers the two fast paths have (a cached answer, a
    negative answer for the cluster zone) are sent at once, the rest go to the full path as a task.
    """
    BATCH = 64

    def __init__(self, server: DNSServer, port: int) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(("0.0.0.0", port))
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self.readable)

    def readable(self) -> None:
        fast, negative = self.server.fast.get, self.server.fast_negative
        for _ in range(self.BATCH):
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. an ICMP error queued for an earlier answer
                continue
            out = fast(data) or negative(data)
            if out is not None:
                self.send(out, addr)
            else:
                asyncio.ensure_future(self.reply(data, addr))

    def send(self, out: bytes, addr) -> None:
        try:
            self.sock.sendto(out, addr)
        except OSError:
            pass  # a full socket buffer drops the answer, as UDP may; the client retries

    async def reply(self, data: bytes, addr) -> None:
        out = await self.server.answer(data, "udp", f"{addr[0]}:{addr[1]}")
        if out:
            self.send(out, addr)


async def tcp_client(server: DNSServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    try:
        while True:
            head = await reader.readexactly(2)
            data = await reader.readexactly(int.from_bytes(head, "big"))
            out = await server.answer(data, "tcp", f"{peer[0]}:{peer[1]}")
            if out:
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def http_endpoints(server: DNSServer) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            port = self.server.server_address[1]
            if self.path == "/metrics":
                body, code = server.metrics.render(dict(server.fast.counts), dict(server.negative_counts)), 200
            elif self.path == "/health":
                body, code = "OK", 200
            elif self.path == "/ready":
                body, code = ("OK", 200) if server.ready else ("not ready", 503)
            else:
                body, code = "404 page not found\n", 404
            del port
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    for port in sorted({p for b in server.blocks for p in b.ports}):
        httpd = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()


async def serve(server: DNSServer) -> None:
    udp = []  # kept referenced for the life of the server
    for port in sorted({b.port for b in server.blocks}):
        udp.append(UDPServer(server, port))
        await asyncio.start_server(lambda r, w: tcp_client(server, r, w), "0.0.0.0", port)
    http_endpoints(server)
    server.ready = True
    print(f"[INFO] k8semu DNS serving on {', '.join(str(b.port) for b in server.blocks)}", flush=True)
    await server.watch()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coredns", prefix_chars="-")
    parser.add_argument("-conf", default="/etc/coredns/Corefile")
    parser.add_argument("-snapshot", default=os.environ.get("K8SEMU_DNS_SNAPSHOT", ""))
    args, _ = parser.parse_known_args(argv)
    try:
        server = DNSServer(args.conf, args.snapshot)
    except (CorefileError, OSError) as exc:
        print(f"[FATAL] {exc}", file=sys.stderr, flush=True)
        return 1
    asyncio.run(serve(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
