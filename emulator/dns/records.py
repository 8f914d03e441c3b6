"""The Kubernetes records of the cluster zone, per the DNS-Based Service Discovery spec
(kubernetes/dns, docs/specification.md, schema 1.1.0), computed from a snapshot of the cluster.

The snapshot is plain JSON (written by the manager, ``cluster.dnsview``); ``resolve`` is pure:
(snapshot, question, options) -> rcode and records, so every rule is unit-tested.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.reversename

SCHEMA_VERSION = "1.1.0"


@dataclass
class Options:
    zones: list[str]  # e.g. ["cluster.local.", "in-addr.arpa.", "ip6.arpa."]
    pods: str = "disabled"  # insecure | verified | disabled
    ttl: int = 5
    endpoint_pod_names: bool = False


@dataclass
class Answer:
    rcode: int = dns.rcode.NOERROR
    records: list[dns.rrset.RRset] = field(default_factory=list)
    authoritative: bool = True


def _rr(name: str, ttl: int, rtype: str, *values: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rtype, *values)


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def _endpoint_host(ep: dict, opts: Options) -> str:
    if ep.get("hostname"):
        return ep["hostname"]
    if opts.endpoint_pod_names and ep.get("pod"):
        return ep["pod"]
    return dashed(ep["ip"])


class Snapshot:
    """A cluster snapshot indexed once for lookups (namespaces as a set, Services by namespace
    and name, pods by address): a query costs dictionary lookups, not a scan of every Service,
    which matters for a cluster of 1,000 Services answering misses at tens of thousands a second."""

    def __init__(self, data: dict) -> None:
        self.data = data
        self.namespaces = set(data.get("namespaces", []))
        self.services = {(s["namespace"], s["name"]): s for s in data.get("services", [])}
        self.pods = {(p["ip"], p["namespace"]) for p in data.get("pods", [])}

    @classmethod
    def of(cls, snapshot: "dict | Snapshot") -> "Snapshot":
        return snapshot if isinstance(snapshot, Snapshot) else cls(snapshot)


def cluster_zone(opts: Options) -> str:
    return next((z for z in opts.zones if not z.endswith("arpa.")), "cluster.local.")


def resolve(snapshot: "dict | Snapshot", qname: str, qtype: str, opts: Options) -> Answer | None:
    """Answer a question about the cluster, or None if it is outside the plugin's zones."""
    snapshot = Snapshot.of(snapshot)
    qname = qname.lower() if qname.endswith(".") else qname.lower() + "."
    if qname.endswith(".in-addr.arpa.") or qname.endswith(".ip6.arpa."):
        return _reverse(snapshot, qname, qtype, opts)
    zone = cluster_zone(opts)
    if not (qname == zone or qname.endswith("." + zone)):
        return None
    labels = qname[: -len(zone)].rstrip(".").split(".") if qname != zone else []
    ttl = opts.ttl
    if labels == ["dns-version"]:
        return Answer(records=[_rr(qname, ttl, "TXT", f'"{SCHEMA_VERSION}"')]) if qtype in ("TXT", "ANY") else Answer()
    namespaces = snapshot.namespaces
    if not labels or labels in (["svc"], ["pod"]):
        return Answer()  # the zone and its structure exist: no data
    if labels[-1] == "pod" and len(labels) == 2:  # <ns>.pod.<zone>: CoreDNS's NODATA for a namespace
        return Answer() if labels[0] in namespaces else Answer(rcode=dns.rcode.NXDOMAIN)
    if labels[-1] == "pod" and len(labels) == 3:
        return _pod(snapshot, qname, qtype, labels[0], labels[1], opts)
    if labels[-1] != "svc":
        return Answer(rcode=dns.rcode.NXDOMAIN)
    parts = labels[:-1]
    if len(parts) == 1:
        return Answer() if parts[0] in namespaces else Answer(rcode=dns.rcode.NXDOMAIN)
    ns, svc_name = parts[-1], parts[-2]
    svc = snapshot.services.get((ns, svc_name))
    if svc is None:
        return Answer(rcode=dns.rcode.NXDOMAIN)
    rest = parts[:-2]
    if not rest:
        return _service(svc, qname, qtype, ttl, zone)
    if len(rest) == 1 and not rest[0].startswith("_"):  # <hostname>.<svc>.<ns>.svc.<zone>
        eps = [e for e in svc.get("endpoints", []) if e["ready"] and _endpoint_host(e, opts) == rest[0]]
        if not eps or svc["cluster_ip"] not in ("", "None"):
            return Answer(rcode=dns.rcode.NXDOMAIN)
        return Answer(records=[_rr(qname, ttl, "A", *[e["ip"] for e in eps])]) if qtype in ("A", "ANY") else Answer()
    if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
        return _srv(svc, qname, qtype, rest[0][1:], rest[1][1:].upper(), ttl, zone, opts)
    return Answer(rcode=dns.rcode.NXDOMAIN)


def _service(svc: dict, qname: str, qtype: str, ttl: int, zone: str) -> Answer:
    if svc["type"] == "ExternalName":
        target = svc["external_name"].rstrip(".") + "."
        return Answer(records=[_rr(qname, ttl, "CNAME", target)])
    if svc["cluster_ip"] and svc["cluster_ip"] != "None":
        return Answer(records=[_rr(qname, ttl, "A", svc["cluster_ip"])]) if qtype in ("A", "ANY") else Answer()
    ips = sorted({e["ip"] for e in svc.get("endpoints", []) if e["ready"]}, key=ipaddress.IPv4Address)
    if not ips:  # a headless Service without ready endpoints has no name yet (CoreDNS: NXDOMAIN)
        return Answer(rcode=dns.rcode.NXDOMAIN)
    return Answer(records=[_rr(qname, ttl, "A", *ips)]) if qtype in ("A", "ANY") else Answer()


def _srv(svc: dict, qname: str, qtype: str, port_name: str, proto: str, ttl: int, zone: str,
         opts: Options) -> Answer:
    port = next((p for p in svc["ports"] if p["name"] == port_name and p["protocol"] == proto), None)
    if port is None:
        return Answer(rcode=dns.rcode.NXDOMAIN)
    if qtype not in ("SRV", "ANY"):
        return Answer()
    base = f"{svc['name']}.{svc['namespace']}.svc.{zone}"
    if svc["cluster_ip"] and svc["cluster_ip"] != "None":
        return Answer(records=[_rr(qname, ttl, "SRV", f"0 100 {port['port']} {base}")])
    if not any(e["ready"] for e in svc.get("endpoints", [])):
        return Answer(rcode=dns.rcode.NXDOMAIN)  # as the Service's own name
    values = []
    for e in svc.get("endpoints", []):
        ep_port = next((p["port"] for p in e.get("ports", []) if p["name"] == port_name), None)
        if e["ready"] and ep_port:
            values.append(f"0 100 {ep_port} {_endpoint_host(e, opts)}.{base}")
    return Answer(records=[_rr(qname, ttl, "SRV", *values)]) if values else Answer()


def _pod(snapshot: Snapshot, qname: str, qtype: str, name: str, ns: str, opts: Options) -> Answer:
    if opts.pods == "disabled":
        return Answer(rcode=dns.rcode.NXDOMAIN)
    try:
        ip = str(ipaddress.IPv4Address(name.replace("-", ".")))
    except ValueError:
        return Answer(rcode=dns.rcode.NXDOMAIN)
    if opts.pods == "verified" and (ip, ns) not in snapshot.pods:
        return Answer(rcode=dns.rcode.NXDOMAIN)
    return Answer(records=[_rr(qname, opts.ttl, "A", ip)]) if qtype in ("A", "ANY") else Answer()


def _reverse(snapshot: Snapshot, qname: str, qtype: str, opts: Options) -> Answer | None:
    if not any(qname.endswith(z) for z in opts.zones if z.endswith("arpa.")):
        return None
    try:
        ip = str(dns.reversename.to_address(dns.name.from_text(qname)))
    except Exception:
        return None
    zone = cluster_zone(opts)
    targets = []
    for svc in snapshot.services.values():
        base = f"{svc['name']}.{svc['namespace']}.svc.{zone}"
        if svc["cluster_ip"] == ip:
            targets.append(base)
        elif svc["cluster_ip"] in ("", "None"):
            targets += [f"{_endpoint_host(e, opts)}.{base}" for e in svc.get("endpoints", []) if e["ip"] == ip]
    if not targets:
        return None  # not ours: fall through (or NXDOMAIN) as the Corefile says
    return Answer(records=[_rr(qname, opts.ttl, "PTR", *targets)]) if qtype in ("PTR", "ANY") else Answer()
