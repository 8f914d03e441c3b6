"""NetworkPolicy manifests -> model, refusing what the API server refuses (bad CIDR, an except
outside its cidr, endPort below port, an unknown protocol), with the field named."""
from __future__ import annotations

import ipaddress

from emulator.model.meta import ObjectMeta
from emulator.model.netpol import IPBlock, NetworkPolicy, Peer, PolicyPort, Rule
from emulator.model.selectors import selector_from_dict
from emulator.spec.loader import PathKey
from emulator.spec import labels
from emulator.spec.reader import Reader


def _selector(r: Reader, path: PathKey):
    return labels.selector(r, path)


def _peers(r: Reader, path: PathKey) -> tuple[Peer, ...]:
    out = []
    for i, _ in enumerate(r.seq(path)):
        p = path + (i,)
        r.mapping(p, {"podSelector", "namespaceSelector", "ipBlock"})
        block = None
        if r.get(p + ("ipBlock",)) is not None:
            if r.get(p + ("podSelector",)) is not None or r.get(p + ("namespaceSelector",)) is not None:
                r.fail(p, "may not specify more than 1 peer type when ipBlock is set")
            r.mapping(p + ("ipBlock",), {"cidr", "except"}, required=("cidr",))
            cidr = r.string(p + ("ipBlock", "cidr"), "")
            try:
                net = ipaddress.IPv4Network(cidr, strict=False)
            except ValueError:
                r.fail(p + ("ipBlock", "cidr"), f"Invalid value: {cidr!r}: must be a valid CIDR")
                continue
            excepts = []
            for j, ex in enumerate(r.seq(p + ("ipBlock", "except"))):
                try:
                    exnet = ipaddress.IPv4Network(str(ex), strict=False)
                except ValueError:
                    r.fail(p + ("ipBlock", "except", j), f"Invalid value: {ex!r}: must be a valid CIDR")
                    continue
                if not exnet.subnet_of(net) or exnet == net:
                    r.fail(p + ("ipBlock", "except", j), f"Invalid value: {ex!r}: must be a strict subset of `cidr`")
                excepts.append(str(exnet))
            block = IPBlock(str(net), tuple(excepts))
        out.append(Peer(_selector(r, p + ("podSelector",)), _selector(r, p + ("namespaceSelector",)), block))
    return tuple(out)


def _ports(r: Reader, path: PathKey) -> tuple[PolicyPort, ...]:
    out = []
    for i, _ in enumerate(r.seq(path)):
        p = path + (i,)
        r.mapping(p, {"protocol", "port", "endPort"})
        proto = r.string(p + ("protocol",), "TCP")
        if proto not in ("TCP", "UDP", "SCTP"):
            r.fail(p + ("protocol",), f"Unsupported value: {proto!r}: supported values: \"SCTP\", \"TCP\", \"UDP\"")
        port = r.get(p + ("port",))
        end = r.integer(p + ("endPort",), None, 1, 65535)
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if end is not None:
            if not isinstance(port, int):
                r.fail(p + ("endPort",), "may not be specified when `port` is not a number")
            elif end < port:
                r.fail(p + ("endPort",), f"Invalid value: {end}: must be greater than or equal to `port`")
        if isinstance(port, int) and not 1 <= port <= 65535:
            r.fail(p + ("port",), f"Invalid value: {port}: must be between 1 and 65535, inclusive")
        out.append(PolicyPort(proto or "TCP", port, end))
    return tuple(out)


def parse_network_policy(r: Reader, meta: ObjectMeta, source) -> NetworkPolicy:
    spec: PathKey = ("spec",)
    r.mapping(spec, {"podSelector", "policyTypes", "ingress", "egress"}, required=("podSelector",))
    selector = _selector(r, spec + ("podSelector",))
    rules = {}
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        rs = []
        for i, _ in enumerate(r.seq(spec + (direction,))):
            p = spec + (direction, i)
            r.mapping(p, {peer_key, "ports"})
            rs.append(Rule(_peers(r, p + (peer_key,)), _ports(r, p + ("ports",))))
        rules[direction] = tuple(rs)
    types = r.seq(spec + ("policyTypes",))
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            r.fail(spec + ("policyTypes", i), f"Unsupported value: {t!r}: supported values: \"Egress\", \"Ingress\"")
    if not types:
        types = ["Ingress"] + (["Egress"] if r.get(spec + ("egress",)) is not None else [])
    return NetworkPolicy(meta, selector or selector_from_dict({}), tuple(types), rules["ingress"], rules["egress"], source)
