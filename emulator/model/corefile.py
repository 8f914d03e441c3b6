"""Corefile parsing and rendering, CoreDNS's syntax:

    .:53 {                       # server block: zones (and port) it serves
        errors
        kubernetes cluster.local in-addr.arpa ip6.arpa {
           pods insecure
           fallthrough in-addr.arpa ip6.arpa
        }
        forward . /etc/resolv.conf
    }

Parsed completely before anything is served; an unknown plugin or a syntax error is a
``CorefileError`` naming the line, as CoreDNS prints it (``Corefile:12 - Error during parsing``).
The Corefiles k8semu writes itself (kubeadm's, for the cluster's domain; an external host's
``hosts`` server) come from ``default_corefile`` and ``hosts_corefile``, which insert only words
that pass their rule (a DNS name, an IPv4 address) and parse what they wrote before returning it.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from emulator.model import validation

KNOWN_PLUGINS = ("errors", "log", "health", "ready", "kubernetes", "forward", "cache", "loadbalance",
                 "hosts", "rewrite", "prometheus", "loop", "reload", "debug", "whoami")

DEFAULT_COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


class CorefileError(Exception):
    def __init__(self, file: str, line: int, message: str) -> None:
        self.file, self.line = file, line
        super().__init__(f"{file}:{line} - Error during parsing: {message}")


@dataclass
class Directive:
    name: str
    args: list[str]
    line: int
    block: list["Directive"] = field(default_factory=list)

    def get(self, name: str) -> "Directive | None":
        return next((d for d in self.block if d.name == name), None)


@dataclass
class ServerBlock:
    zones: list[str]  # normalised, with trailing dot ("." for the root)
    port: int
    plugins: list[Directive]
    line: int

    def plugin(self, name: str) -> Directive | None:
        return next((d for d in self.plugins if d.name == name), None)


def _tokens(text: str, file: str) -> list[tuple[int, list[str]]]:
    """(line number, words) for each non-empty line. As in the Caddyfile, a brace is a block
    delimiter only as a word of its own (``{1}`` in a rewrite template is just text)."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0]
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise CorefileError(file, number, str(exc)) from None
        if words:
            out.append((number, words))
    return out


def _zone(word: str, file: str, line: int) -> tuple[str, int]:
    port = 53
    word = word.removeprefix("dns://")
    if ":" in word:
        word, _, p = word.rpartition(":")
        if not p.isdigit():
            raise CorefileError(file, line, f"invalid port {p!r}")
        port = int(p)
    zone = word or "."
    return (zone if zone.endswith(".") else zone + "."), port


def parse(text: str, file: str = "Corefile") -> list[ServerBlock]:
    """Parse a whole Corefile.

    Raises:
        CorefileError: the first problem, with its line.
    """
    lines = _tokens(text, file)
    blocks: list[ServerBlock] = []
    i = 0

    def directives(start: int) -> tuple[list[Directive], int]:
        out: list[Directive] = []
        j = start
        while j < len(lines):
            number, words = lines[j]
            if words == ["}"]:
                return out, j + 1
            if "}" in words[:-1] or (words[-1] == "}" and len(words) > 1):
                raise CorefileError(file, number, "unexpected '}'")
            opens = words[-1] == "{"
            words = words[:-1] if opens else words
            if not words:
                raise CorefileError(file, number, "unexpected '{'")
            d = Directive(words[0], words[1:], number)
            j += 1
            if opens:
                d.block, j = directives(j)
            out.append(d)
        raise CorefileError(file, lines[-1][0] if lines else 1, "unexpected EOF: missing '}'")

    while i < len(lines):
        number, words = lines[i]
        if words[-1] != "{":
            raise CorefileError(file, number, f"expected a server block like '.:53 {{', got {' '.join(words)!r}")
        zones = [_zone(w, file, number) for w in words[:-1]]
        if not zones:
            raise CorefileError(file, number, "a server block needs at least one zone")
        if len({port for _, port in zones}) > 1:  # CoreDNS would make one server per port
            raise CorefileError(file, number, "k8semu serves a server block on one port: give its zones the same "
                                              "port, or write one block per port")
        plugins, i = directives(i + 1)
        for d in plugins:
            if d.name not in KNOWN_PLUGINS:
                raise CorefileError(file, d.line, f"Unknown directive '{d.name}'")
        blocks.append(ServerBlock([z for z, _ in zones], zones[0][1], plugins, number))
    if not blocks:
        raise CorefileError(file, 1, "no server blocks")
    return blocks


def _word(word: str) -> str:
    """A word as the parser reads it back: quoted when it holds anything but plain characters."""
    return word if word and all(c.isalnum() or c in "._-:/@%+=,*" for c in word) else shlex.quote(word)


def _directive(d: Directive, depth: int) -> str:
    pad = "    " * depth
    line = pad + " ".join(_word(w) for w in [d.name, *d.args])
    if not d.block:
        return line + "\n"
    return line + " {\n" + "".join(_directive(sub, depth + 1) for sub in d.block) + pad + "}\n"


def render(blocks: list[ServerBlock]) -> str:
    """A parsed Corefile written back, one directive per line, each word quoted where it must be:
    what reaches the coredns pods is what ``parse`` understood of a user's Corefile (the coredns
    ConfigMap), never its text; comments and layout are not kept."""
    out = []
    for block in blocks:
        zones = " ".join(f"{z.rstrip('.') or '.'}:{block.port}" for z in block.zones)
        out.append(f"{zones} {{\n" + "".join(_directive(d, 1) for d in block.plugins) + "}\n")
    return "".join(out)


def default_corefile(domain: str) -> str:
    """kubeadm's Corefile for the cluster domain ``domain``.

    Raises:
        CorefileError: the domain is not a DNS-1123 subdomain (it would add words or lines).
    """
    if not validation.is_dns1123_subdomain(domain):
        raise CorefileError("Corefile", 7, f"cluster domain {domain!r} is not a DNS-1123 subdomain")
    text = DEFAULT_COREFILE.replace("{domain}", domain)
    parse(text)
    return text


def hosts_corefile(records: list[tuple[str, str]]) -> str:
    """A server answering ``records`` (name, IPv4) from a hosts block, logging every query,
    NXDOMAIN for anything else: what an external DNS host runs.

    Raises:
        CorefileError: a name or an address that does not pass its rule.
    """
    lines = []
    for name, ip in records:
        if not validation.is_hostname(name) or not validation.is_ip(ip):
            raise CorefileError("Corefile", 4, f"record {name!r} -> {ip!r} is not a DNS name and an IPv4 address")
        lines.append(f"        {ip} {name}")
    text = ".:53 {\n    log\n    hosts {\n" + "".join(line + "\n" for line in lines) + "    }\n}\n"
    parse(text)
    return text
