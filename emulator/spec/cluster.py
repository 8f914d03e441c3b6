"""``kind: Cluster`` documents -> ClusterConfig.

The schema (documented in docs/cluster-spec.md)::

    apiVersion: k8semu.io/v1alpha1
    kind: Cluster
    metadata: {name: demo}
    spec:
      nodes:                      # in order; node i gets underlay .(i+2) and pod CIDR number i
        - {name: control-plane, role: control-plane}
        - {name: worker, count: 2, labels: {disk: ssd}}     # worker-1, worker-2
      network:
        underlay: {subnet: 172.18.0.0/24, mtu: 1500}
        podSubnet: 10.244.0.0/16
        nodeCIDRMaskSize: 24
        serviceSubnet: 10.96.0.0/12
        clusterDomain: cluster.local
      images: {my/app: {command: [python3, -m, http.server, "80"]}}
      manifests: [apps/web.yaml, {apiVersion: v1, kind: Pod, ...}]
"""
from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path
from typing import Any

from emulator.errors import Problem, SourceRef, SpecError
from emulator.model import naming, validation
from emulator.model.cluster import (API_VERSION, POD_INTERFACES, ClusterConfig, DNSConfig, ExternalHost,
                                    IngressConfig)
from emulator.model.corefile import CorefileError, parse
from emulator.model.calico import RR_LABEL
from emulator.model.images import Image
from emulator.model.network import AddressPool, PodNetwork, ServiceNetwork, Underlay
from emulator.model.node import CONTROL_PLANE_TAINT, Node, Taint
from emulator.spec import calico as calico_spec
from emulator.spec import faults as faults_spec
from emulator.spec import underlay as underlay_spec
from emulator.spec import dataplane, files
from emulator.spec.loader import Document, PathKey, load_file
from emulator.spec.manifests import parse_documents
from emulator.spec.reader import Reader, did_you_mean

ROLES = ("control-plane", "worker")
MAX_POOL = 65536  # addresses in loadBalancerPool (MetalLB pools are a few dozen; a /16 at most)
MAX_EXTERNAL_HOSTS = 64
MAX_DNS_RECORDS = 1000
MAX_IMAGES = 1000


def _cidr(r: Reader, path: PathKey, default: str, max_prefix: int = 30) -> str:
    value = r.string(path, default)
    if value is None:
        return default
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        r.fail(path, f"invalid IPv4 CIDR {value!r}: {exc}")
        return default
    if net.prefixlen > max_prefix:
        r.fail(path, f"{value} is too small (prefix longer than /{max_prefix})")
    return str(net)


def _nodes(r: Reader, underlay: Underlay, pods: PodNetwork) -> tuple[Node, ...]:
    nodes: list[Node] = []
    entries = r.seq(("spec", "nodes"))
    if not entries and not r.problems:
        r.fail(("spec", "nodes") if r.get(("spec", "nodes")) is not None else ("spec",),
               "a cluster needs at least one node")
    seen: dict[str, PathKey] = {}
    for i, _ in enumerate(entries):
        p: PathKey = ("spec", "nodes", i)
        r.mapping(p, {"name", "role", "labels", "count", "schedulable", "underlaySubnet"}, required=("name",))
        name = r.string(p + ("name",), "", check=validation.check_dns1123_label)
        role = r.string(p + ("role",), "worker")
        if role not in ROLES:
            r.fail(p + ("role",), f"unknown role {role!r}{did_you_mean(str(role), ROLES)}; "
                                  f"choose {' or '.join(ROLES)}")
        count = r.integer(p + ("count",), None, 1, 250)
        schedulable = r.typed(p + ("schedulable",), bool, role != "control-plane")
        labels = r.string_map(p + ("labels",))
        subnet = underlay_spec.node_subnet(r, p, underlay)
        if not name:
            continue
        if len(nodes) + (count or 1) > naming.MAX_NODES:
            r.fail(p + ("count",) if count else p, f"a cluster has at most {naming.MAX_NODES} nodes")
            break
        for node_name in naming.expand_node_names(name, count):
            if node_name in seen:
                r.fail(p + ("name",), f"duplicate node name {node_name!r}")
                continue
            if len(node_name) > 63:
                r.fail(p + ("name",), f"node name {node_name!r} is longer than 63 characters")
            seen[node_name] = p
            index = len(nodes)
            taints = () if schedulable else (Taint(CONTROL_PLANE_TAINT),)
            place = sum(1 for n in nodes if n.subnet == subnet)  # addresses are per subnet, from .2
            nodes.append(Node(node_name, index, role, underlay.node_ip(place, subnet)
                              if place < underlay.capacity(subnet) else "",
                              pods.node_cidr(index) if index < pods.max_nodes() else "",
                              labels, taints, r.doc.where(p + ("name",)), subnet))
    for subnet in underlay.subnets:
        held = sum(1 for n in nodes if n.subnet == subnet)
        if held > underlay.capacity(subnet):
            r.fail(("spec", "network", "underlay", "subnet" if subnet == underlay.subnet else "routedSubnets"),
                   f"{subnet} holds {underlay.capacity(subnet)} nodes; the spec puts {held} there")
    if len(nodes) > pods.max_nodes():
        r.fail(("spec", "network", "nodeCIDRMaskSize"),
               f"{pods.subnet} split into /{pods.node_mask} gives {pods.max_nodes()} node CIDRs; "
               f"the spec has {len(nodes)} nodes")
    return tuple(nodes)


def _pool(r: Reader, path: PathKey, pods: PodNetwork, services: ServiceNetwork) -> AddressPool:
    """``10.50.100.5-10.50.100.25``, a CIDR, or a list of either (MetalLB's address pools), kept
    as ranges and capped at MAX_POOL addresses."""
    value = r.get(path)
    if value is None:
        return AddressPool()
    entries = value if isinstance(value, list) else [value]
    ranges: list[tuple[int, int]] = []
    total = 0
    for i, entry in enumerate(entries):
        p = path + ((i,) if isinstance(value, list) else ())
        try:
            if isinstance(entry, str) and "-" in entry:
                lo, hi = (int(ipaddress.IPv4Address(x.strip())) for x in entry.split("-", 1))
                if hi < lo:
                    raise ValueError(f"{ipaddress.IPv4Address(hi)} is before {ipaddress.IPv4Address(lo)}")
            elif isinstance(entry, str):
                net = ipaddress.IPv4Network(entry, strict=True)
                hosts = (net.network_address + 1, net.broadcast_address - 1) if net.prefixlen < 31 else \
                    (net.network_address, net.broadcast_address)
                lo, hi = int(hosts[0]), int(hosts[1])
            else:
                raise ValueError("expected a string")
        except ValueError as exc:
            r.fail(p, f"invalid address range {entry!r}: {exc}")
            continue
        total += hi - lo + 1
        if total > MAX_POOL:
            r.fail(p, f"the pool would hold {total} addresses; at most {MAX_POOL} are allowed")
            return AddressPool()
        clash = next(((subnet, what) for subnet, what in ((pods.subnet, "podSubnet"), (services.subnet, "serviceSubnet"))
                      if lo <= int(ipaddress.IPv4Network(subnet).broadcast_address)
                      and hi >= int(ipaddress.IPv4Network(subnet).network_address)), None)
        if clash:
            r.fail(p, f"{entry} overlaps {clash[1]} {clash[0]}")
            continue
        if any(lo <= b and hi >= a for a, b in ranges):
            r.fail(p, f"{entry} overlaps another entry of the pool")
            continue
        ranges.append((lo, hi))
    return AddressPool(tuple(ranges))


def _external_hosts(r: Reader, underlay: Underlay, nodes: tuple[Node, ...], pool: AddressPool) -> tuple:
    """Hosts outside the cluster on the underlay (no routes anywhere but the underlay subnet)."""
    out = []
    net = ipaddress.IPv4Network(underlay.subnet)
    taken = {n.ip for n in nodes}
    names = {n.name for n in nodes}
    entries = r.seq(("spec", "externalHosts"))
    if len(entries) > MAX_EXTERNAL_HOSTS:
        r.fail(("spec", "externalHosts"), f"at most {MAX_EXTERNAL_HOSTS} external hosts")
        return ()
    for i, _ in enumerate(entries):
        p: PathKey = ("spec", "externalHosts", i)
        r.mapping(p, {"name", "ip", "dns"}, required=("name",))
        r.mapping(p + ("dns",), {"records"})
        records = []
        table = r.get(p + ("dns", "records"), {})
        if not isinstance(table, dict) or len(table) > MAX_DNS_RECORDS:
            r.fail(p + ("dns", "records"), f"expected a mapping of at most {MAX_DNS_RECORDS} names to IPv4 addresses")
            table = {}
        for rname, addr in table.items():
            if not validation.is_hostname(rname):
                r.fail(p + ("dns", "records", rname), f"{rname!r} is not a valid DNS name (letters, digits and "
                                                      "'-' in dot-separated labels of at most 63 characters)")
                continue
            if not validation.is_ip(addr):
                r.fail(p + ("dns", "records", rname), f"{addr!r} is not an IPv4 address")
                continue
            records.append((str(rname).rstrip(".").lower(), str(addr)))
        name = r.string(p + ("name",), "", check=validation.check_dns1123_label)
        ip = r.string(p + ("ip",), "") or str(net.broadcast_address - 1 - i)
        try:
            if ipaddress.IPv4Address(ip) not in net:
                r.fail(p + ("ip",), f"{ip} is not in the underlay subnet {net}")
        except ValueError:
            r.fail(p + ("ip",), f"{ip!r} is not a valid IPv4 address")
            continue
        if ip in taken or ip in pool:
            r.fail(p + ("ip",), f"{ip} is already used by a node or the load-balancer pool")
        if name in names:
            r.fail(p + ("name",), f"duplicate host name {name!r}")
        taken.add(ip)
        names.add(name or "")
        out.append(ExternalHost(name or "", ip, i, tuple(records)))
    return tuple(out)


def _dns(r: Reader):
    """``spec.dns``: CoreDNS on or off, its replicas, and a Corefile replacing kubeadm's."""
    p: PathKey = ("spec", "dns")
    r.mapping(p, {"enabled", "replicas", "corefile"})
    corefile = r.string(p + ("corefile",), "") or ""
    if corefile:
        try:
            parse(corefile, "Corefile")
        except CorefileError as exc:
            where = r.doc.where(p + ("corefile",))
            # a block scalar starts on the line after its indicator
            line = where.line + exc.line
            text = r.doc.lines[line - 1] if line <= len(r.doc.lines) else ""
            r.problems.append(Problem(SourceRef(where.file, line, 1, text), "spec.dns.corefile", str(exc)))
    return DNSConfig(bool(r.typed(p + ("enabled",), bool, True)), r.integer(p + ("replicas",), 2, 1, 10) or 2,
                     corefile)


def _images(r: Reader) -> dict[str, Image]:
    out = {}
    images = r.get(("spec", "images"), {})
    if not isinstance(images, dict):
        r.fail(("spec", "images"), "expected a mapping of image name to {command, args}")
        return out
    if len(images) > MAX_IMAGES:
        r.fail(("spec", "images"), f"at most {MAX_IMAGES} images")
        return out
    for name in images:
        p: PathKey = ("spec", "images", name)
        r.mapping(p, {"command", "args", "description"})
        words = {}
        for key in ("command", "args"):
            items = r.seq(p + (key,))
            for i, item in enumerate(items):
                if not isinstance(item, str):
                    r.fail(p + (key, i), f"expected a string, got {item!r} (quote it)")
            words[key] = tuple(str(x) for x in items)
        if not words["command"] and not words["args"]:
            r.fail(p, "an image mapping needs a command")
        out[str(name)] = Image(words["command"], words["args"], str(r.get(p + ("description",), "")))
    return out


def _manifest_documents(r: Reader, base: Path) -> list[Document]:
    docs: list[Document] = []
    for i, entry in enumerate(r.seq(("spec", "manifests"))):
        p: PathKey = ("spec", "manifests", i)
        if isinstance(entry, dict) and "path" in entry and "kind" not in entry:
            r.mapping(p, {"path"})
            entry = entry["path"]
            p = p + ("path",)
        if isinstance(entry, str):
            try:
                target = files.confine(base, entry, base, r.doc.where(p), "manifest")
            except SpecError as exc:
                r.problems += [Problem(q.where, "spec.manifests", q.message) for q in exc.problems]
                continue
            if not target.exists():
                r.fail(p, f"manifest file {str(target)!r} does not exist")
                continue
            try:
                docs += load_file(target, r.doc.where(p))
            except SpecError as exc:
                r.problems += exc.problems
        elif isinstance(entry, dict):
            docs.append(r.doc.sub(p))
        else:
            r.fail(p, "a manifest entry is a path or an inline Kubernetes object")
    return docs


def parse_cluster(doc: Document, base: Path | None = None) -> ClusterConfig:
    """Validate a Cluster document and everything it references.

    Raises:
        SpecError: every problem found in the spec and its manifests.
    """
    r = Reader(doc)
    data: Any = doc.data
    if not isinstance(data, dict):
        raise SpecError([doc.problem((), "", "a cluster spec must be a mapping")])
    r.mapping((), {"apiVersion", "kind", "metadata", "spec"}, required=("apiVersion", "kind", "metadata", "spec"))
    if data.get("apiVersion") not in (None, API_VERSION):
        r.fail(("apiVersion",), f"expected {API_VERSION!r}, got {data.get('apiVersion')!r}")
    if data.get("kind") not in (None, "Cluster"):
        r.fail(("kind",), f"expected 'Cluster', got {data.get('kind')!r}"
                          f"{did_you_mean(str(data.get('kind')), ['Cluster'])}")
    r.mapping(("metadata",), {"name"}, {"labels", "annotations"}, required=("name",))
    name = r.string(("metadata", "name"), "", check=validation.check_dns1123_label)
    r.mapping(("spec",), {"nodes", "network", "images", "manifests", "externalHosts", "dns", "ingress", "security",
                          "impairments", "timeScale"},
              required=("nodes",))
    net: PathKey = ("spec", "network")
    r.mapping(net, {"underlay", "podSubnet", "nodeCIDRMaskSize", "serviceSubnet", "clusterDomain",
                    "loadBalancerPool", "podInterface", "cni", "kubeProxy", "flannel", "calico"})
    r.mapping(net + ("underlay",), {"subnet", "mtu", "routedSubnets"})
    underlay = Underlay(_cidr(r, net + ("underlay", "subnet"), Underlay.subnet),
                        r.integer(net + ("underlay", "mtu"), 1500, 1280, 9000) or 1500)
    pod_subnet = _cidr(r, net + ("podSubnet",), PodNetwork.subnet, 28)
    node_mask = r.integer(net + ("nodeCIDRMaskSize",), 24, 8, 29)
    if node_mask is not None and node_mask <= ipaddress.IPv4Network(pod_subnet).prefixlen:
        r.fail(net + ("nodeCIDRMaskSize",), f"/{node_mask} must be longer than the pod subnet "
                                            f"{pod_subnet}")
        node_mask = ipaddress.IPv4Network(pod_subnet).prefixlen + 1
    pods = PodNetwork(pod_subnet, node_mask or 24)
    services = ServiceNetwork(_cidr(r, net + ("serviceSubnet",), ServiceNetwork.subnet, 28))
    for (pa, a), (pb, b) in (((("underlay", "subnet"), underlay.subnet), (("podSubnet",), pods.subnet)),
                             ((("underlay", "subnet"), underlay.subnet), (("serviceSubnet",), services.subnet)),
                             ((("podSubnet",), pods.subnet), (("serviceSubnet",), services.subnet))):
        if ipaddress.IPv4Network(a).overlaps(ipaddress.IPv4Network(b)):
            r.fail(net + pb, f"{b} overlaps {'.'.join(pa)} {a}")
    underlay = underlay_spec.read(r, net + ("underlay",), underlay, {"podSubnet": pods.subnet,
                                                                     "serviceSubnet": services.subnet})
    domain = r.string(net + ("clusterDomain",), "cluster.local", check=validation.check_dns1123_subdomain)
    pod_interface = r.string(net + ("podInterface",), "veth",
                             check=lambda v: None if v in POD_INTERFACES else
                             f"must be one of {', '.join(POD_INTERFACES)}{did_you_mean(v, POD_INTERFACES)}")
    plane = dataplane.read(r, net, pod_interface or "veth")
    nodes = _nodes(r, underlay, pods)
    calico = None
    if plane.cni == "calico":
        calico = calico_spec.read(r, net, pods.subnet, [n.name for n in nodes])
        # Calico's docs label the reflectors (their BGPPeer selects them); the spec's own labels win
        reflectors = calico.bgp.route_reflectors if calico is not None else ()
        nodes = tuple(replace(n, labels={RR_LABEL: "true", **n.labels}) if n.name in reflectors else n for n in nodes)
    elif r.get(net + ("calico",)) is not None:
        r.fail(net + ("calico",), "applies to cni: calico only")
    underlay_spec.check_planes(r, net, nodes, plane.cni, plane.flannel_backend, calico)
    pool = _pool(r, net + ("loadBalancerPool",), pods, services)
    externals = _external_hosts(r, underlay, nodes, pool)
    images = _images(r)
    impairments, partitions = faults_spec.read(r, [n.name for n in nodes], [h.name for h in externals])
    scale = r.typed(("spec", "timeScale"), (int, float), 1.0)
    if isinstance(scale, bool) or not 0.01 <= float(scale or 0) <= 1:
        r.fail(("spec", "timeScale"), f"a number in 0.01..1 (the node lifecycle's timers are multiplied by it), got {scale!r}")
        scale = 1.0
    dns = _dns(r)
    docs = _manifest_documents(r, base or Path(doc.file).parent)
    objects: tuple = ()
    warnings = list(r.warnings)
    if docs:
        try:
            mset = parse_documents(docs)
            objects = tuple(mset.objects)
            warnings += mset.warnings
        except SpecError as exc:
            r.problems += exc.problems
    if r.problems:
        raise SpecError(r.problems)
    r.mapping(("spec", "ingress"), {"enabled", "nodePort"})
    ingress = IngressConfig(bool(r.typed(("spec", "ingress", "enabled"), bool, False)),
                            r.integer(("spec", "ingress", "nodePort"), 30080, 30000, 32767) or 30080)
    if r.problems:
        raise SpecError(r.problems)
    r.mapping(("spec", "security"), {"allowPrivileged"})
    allow_privileged = bool(r.typed(("spec", "security", "allowPrivileged"), bool, False))
    if r.problems:
        raise SpecError(r.problems)
    return ClusterConfig(name, nodes, underlay, pods, services, domain or "cluster.local", images,
                         pool, externals, dns, ingress, objects, tuple(warnings), doc.file, allow_privileged,
                         pod_interface or "veth", plane.cni, plane.kube_proxy, plane.flannel_backend,
                         plane.min_sync_period, calico, impairments, partitions, float(scale))


def load_cluster(path: str | Path, base: Path | None = None) -> ClusterConfig:
    """Read a cluster spec file; the manifests it names are read from ``base`` (by default the
    spec's own folder), and from nowhere outside it.

    Raises:
        SpecError: the file, its YAML, its schema or any manifest it names is invalid.
    """
    docs = load_file(path)
    if len(docs) != 1:
        raise SpecError([Problem(docs[1].where() if len(docs) > 1 else SourceRef(str(path), 1, 1), "",
                                 f"expected exactly one Cluster document, found {len(docs)}")])
    return parse_cluster(docs[0], base or Path(path).resolve().parent)
