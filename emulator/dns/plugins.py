"""The plugins a Corefile can use, configured from its directives.

Each plugin is small and stateful where CoreDNS's is (cache, metrics); the chain that calls them
in CoreDNS's order lives in ``server``. Configuration errors raise CorefileError with the line.
"""
from __future__ import annotations

import random
import re
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from emulator.model.corefile import CorefileError, Directive
from emulator.dns.records import Options


def _int(d: Directive, value: str, file: str) -> int:
    if not value.isdigit():
        raise CorefileError(file, d.line, f"{d.name}: expected a number, got {value!r}")
    return int(value)


def _duration(d: Directive, value: str, file: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m)?", value)
    if not m:
        raise CorefileError(file, d.line, f"{d.name}: invalid duration {value!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def kubernetes_options(d: Directive, block_zones: list[str], file: str) -> tuple[Options, list[str]]:
    """(record options, fallthrough zones) from a ``kubernetes`` directive."""
    zones = [z if z.endswith(".") else z + "." for z in (d.args or block_zones)]
    opts = Options(zones, ttl=5)
    fallthrough: list[str] = []
    for sub in d.block:
        if sub.name == "pods":
            if sub.args not in (["insecure"], ["verified"], ["disabled"]):
                raise CorefileError(file, sub.line, "pods: expected insecure, verified or disabled")
            opts.pods = sub.args[0]
        elif sub.name == "fallthrough":
            fallthrough = [z if z.endswith(".") else z + "." for z in sub.args] or ["."]
        elif sub.name == "ttl":
            opts.ttl = _int(sub, sub.args[0] if sub.args else "", file)
            if not 0 <= opts.ttl <= 3600:
                raise CorefileError(file, sub.line, "ttl must be in range [0, 3600]")
        elif sub.name == "endpoint_pod_names":
            opts.endpoint_pod_names = True
        elif sub.name in ("namespaces", "labels", "kubeconfig", "endpoint", "tls", "noendpoints",
                          "ignore", "multicluster", "apiserver"):
            pass  # accepted; the snapshot already is this cluster
        else:
            raise CorefileError(file, sub.line, f"kubernetes: unknown property '{sub.name}'")
    return opts, fallthrough


def in_zones(name: str, zones: list[str]) -> bool:
    return any(z == "." or name == z or name.endswith("." + z) for z in zones)


@dataclass
class Cache:
    """Positive and negative answers, each capped at its own TTL (CoreDNS's success/denial)."""
    success_ttl: int = 3600
    denial_ttl: int = 1800
    capacity: int = 9984
    entries: OrderedDict = field(default_factory=OrderedDict)

    @classmethod
    def from_directive(cls, d: Directive, file: str) -> "Cache":
        c = cls()
        if d.args:
            c.success_ttl = c.denial_ttl = _int(d, d.args[0], file)
        for sub in d.block:
            if sub.name in ("success", "denial"):
                cap = _int(sub, sub.args[0], file) if sub.args else c.capacity
                ttl = _int(sub, sub.args[1], file) if len(sub.args) > 1 else None
                if sub.name == "success":
                    c.capacity = cap or c.capacity
                    c.success_ttl = ttl if ttl is not None else c.success_ttl
                elif ttl is not None:
                    c.denial_ttl = ttl
        return c

    def get(self, key: tuple) -> tuple[dns.message.Message, int] | None:
        hit = self.entries.get(key)
        if hit is None:
            return None
        response, stored, ttl = hit
        left = int(stored + ttl - time.monotonic())
        if left <= 0:
            del self.entries[key]
            return None
        if isinstance(response, bytes):  # stored by the wire fast path: parsed when first needed
            response = dns.message.from_wire(response)
            self.entries[key] = (response, stored, ttl)
        return response, left

    def put_wire(self, key: tuple, wire: bytes, ttl: int) -> None:
        """Remember an answer built on the wire (``server``'s negative fast path), so the next
        query for the name sees the TTL count down as it would after ``put``."""
        if ttl <= 0:
            return
        self.entries[key] = (wire, time.monotonic(), ttl)
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def put(self, key: tuple, response: dns.message.Message) -> int | None:
        negative = response.rcode() == dns.rcode.NXDOMAIN or not response.answer
        rrsets = response.answer or response.authority
        ttl = min([r.ttl for r in rrsets] or [self.denial_ttl])
        ttl = min(ttl, self.denial_ttl if negative else self.success_ttl)
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or ttl <= 0:
            return None
        self.entries[key] = (response, time.monotonic(), ttl)
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return ttl


@dataclass
class Hosts:
    entries: dict[str, list[str]]  # name -> addresses
    ttl: int = 3600
    fallthrough: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=lambda: ["."])

    @classmethod
    def from_directive(cls, d: Directive, block_zones: list[str], file: str) -> "Hosts":
        entries: dict[str, list[str]] = defaultdict(list)
        h = cls(entries, zones=[a if a.endswith(".") else a + "." for a in d.args[1:]] or block_zones)
        if d.args and d.args[0] != "/etc/hosts":
            try:
                for line in open(d.args[0]).read().splitlines():
                    words = line.split("#", 1)[0].split()
                    for name in words[1:]:
                        entries[name.lower().rstrip(".") + "."].append(words[0])
            except OSError as exc:
                raise CorefileError(file, d.line, f"hosts: cannot read {d.args[0]}: {exc.strerror}") from None
        for sub in d.block:
            if sub.name == "fallthrough":
                h.fallthrough = [z if z.endswith(".") else z + "." for z in sub.args] or ["."]
            elif sub.name == "ttl":
                h.ttl = _int(sub, sub.args[0], file)
            elif sub.name in ("reload", "no_reverse"):
                pass
            elif len(sub.args) >= 1 and re.fullmatch(r"[\d.:a-fA-F]+", sub.name):
                for name in sub.args:
                    entries[name.lower().rstrip(".") + "."].append(sub.name)
            else:
                raise CorefileError(file, sub.line, f"hosts: unknown property '{sub.name}'")
        return h

    def lookup(self, name: str, qtype: str) -> list[dns.rrset.RRset] | None:
        ips = self.entries.get(name)
        if ips is None:
            return None
        v4 = [ip for ip in ips if ":" not in ip]
        if qtype == "A" and v4:
            return [dns.rrset.from_text(name, self.ttl, "IN", "A", *v4)]
        return []


@dataclass
class Rewrite:
    """``rewrite name [exact|prefix|suffix|regex|substring] FROM TO``: the question is rewritten
    before resolution and the answer names rewritten back, as CoreDNS's ``answer auto``."""
    kind: str
    source: str
    target: str

    @classmethod
    def from_directive(cls, d: Directive, file: str) -> "Rewrite":
        args = d.args[1:] if d.args[:1] == ["continue"] or d.args[:1] == ["stop"] else d.args
        if not args or args[0] != "name":
            raise CorefileError(file, d.line, "rewrite: only 'rewrite name ...' is supported")
        args = args[1:]
        kind = "exact"
        if args and args[0] in ("exact", "prefix", "suffix", "regex", "substring"):
            kind, args = args[0], args[1:]
        if len(args) < 2:
            raise CorefileError(file, d.line, "rewrite name: expected FROM and TO")
        if kind == "regex":
            try:
                re.compile(args[0])
            except re.error as exc:
                raise CorefileError(file, d.line, f"rewrite: invalid regex: {exc}") from None
        return cls(kind, args[0].lower(), args[1].lower())

    def apply(self, name: str) -> str | None:
        n = name.lower()
        src, dst = self.source, self.target
        if self.kind == "exact":
            return (dst.rstrip(".") + ".") if n.rstrip(".") == src.rstrip(".") else None
        if self.kind == "prefix":
            return dst + n[len(src):] if n.startswith(src) else None
        if self.kind == "suffix":
            s = src if src.endswith(".") else src + "."
            d = dst if dst.endswith(".") else dst + "."
            return n[: -len(s)] + d if n.endswith(s) else None
        if self.kind == "substring":
            return n.replace(src, dst) if src in n else None
        m = re.fullmatch(src, n.rstrip("."))
        if not m:
            return None
        out = dst
        for i, group in enumerate(m.groups(), 1):
            out = out.replace("{" + str(i) + "}", group or "")
        return out.rstrip(".") + "."


def shuffle_addresses(response: dns.message.Message) -> None:
    """``loadbalance``: round-robin A/AAAA order (a shuffle per answer)."""
    for rrset in response.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and len(rrset) > 1:
            items = list(rrset)
            random.shuffle(items)
            rrset.clear()
            for item in items:
                rrset.add(item)
