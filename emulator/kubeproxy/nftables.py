"""kube-proxy's nftables mode: the ``nft -f`` input kube-proxy's nftables proxier writes for one node
(kubernetes/pkg/proxy/nftables/proxier.go: setupNFTables, syncProxyRules,
writeServiceToEndpointRules), as a full sync into the ``ip kube-proxy`` table, from the same
Service port views as the iptables mode.

The difference a student is meant to see: instead of a chain of rules per Service walked in
order (KUBE-SERVICES grows with every Service), one ``services`` rule looks the destination up in
the ``service-ips`` verdict map, and endpoints are chosen by ``numgen random mod N vmap``; a
change is an element added or removed. Chain names are kube-proxy's: a prefix, the first 8
characters of the base32 SHA-256 of the rest, and ``namespace/name/protocol/port``
(``__ip/port`` for an endpoint). kube-proxy's own TestOverallNFTablesRules expectation is the
golden test of this module (compared line by line, in any order, as its test compares).

Written in an order nft accepts in one transaction: the table, its sets and maps, every chain,
every rule, then the map elements that name chains. Values are checked again here
(``common.word``): nothing can spill into nft syntax.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from emulator.kubeproxy.common import plan, port_name, word
from emulator.model.netview import EndpointView, ServicePortView

TABLE = "ip kube-proxy"
CHAIN_BASE_MAX = 240
REJECT_CHAIN = "reject-chain"
BASE_SETS = (
    'add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }',
    'add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }',
    "add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; "
    'comment "destinations that are subject to LoadBalancerSourceRanges" ; }',
    "add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; "
    'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }',
    "add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; "
    'comment "vmap to drop or reject packets to services with no endpoints" ; }',
    "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; "
    'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }',
    "add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; "
    'comment "NodePort traffic" ; }',
)
BASE_CHAINS = (
    "cluster-ips-check", "filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }",
    "filter-output-pre-dnat { type filter hook output priority -110 ; }",
    "filter-forward { type filter hook forward priority 0 ; }", "filter-input { type filter hook input priority 0 ; }",
    "filter-output { type filter hook output priority 0 ; }", "firewall-check", "mark-for-masquerade",
    "masquerading", "nat-output { type nat hook output priority -100 ; }",
    "nat-postrouting { type nat hook postrouting priority 100 ; }",
    "nat-prerouting { type nat hook prerouting priority -100 ; }", "nodeport-endpoints-check",
    'reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }', "services",
    "service-endpoints-check",
)


# setupNFTables' rules: (chain, rule with {mark} and {cidrs}, comment)
BASE_RULES = (
    ("cluster-ips-check", "ip daddr @cluster-ips reject", "Reject traffic to invalid ports of ClusterIPs"),
    ("cluster-ips-check", "ip daddr {{ {cidrs} }} drop", "Drop traffic to unallocated ClusterIPs"),
    ("filter-prerouting-pre-dnat", "ct state new jump firewall-check", ""),
    ("filter-forward", "ct state new jump service-endpoints-check", ""),
    ("filter-forward", "ct state new jump cluster-ips-check", ""),
    ("filter-input", "ct state new jump nodeport-endpoints-check", ""),
    ("filter-input", "ct state new jump service-endpoints-check", ""),
    ("filter-output", "ct state new jump service-endpoints-check", ""),
    ("filter-output-pre-dnat", "ct state new jump firewall-check", ""),
    ("filter-output", "ct state new jump cluster-ips-check", ""),
    ("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips", ""),
    ("mark-for-masquerade", "mark set mark or {mark}", ""),
    ("masquerading", "mark and {mark} == 0 return", ""),
    ("masquerading", "mark set mark xor {mark}", ""),
    ("masquerading", "masquerade fully-random", ""),
    ("nat-output", "jump services", ""),
    ("nat-postrouting", "jump masquerading", ""),
    ("nat-prerouting", "jump services", ""),
    ("nodeport-endpoints-check", "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports", ""),
    ("reject-chain", "reject", ""),
    ("services", "ip daddr . meta l4proto . th dport vmap @service-ips", ""),
    ("services", "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports", ""),
    ("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services", ""),
)


@dataclass(frozen=True)
class Options:
    """One node's kube-proxy in nftables mode: its name, the pod range (``--cluster-cidr``), the
    addresses that accept NodePorts (the node's), the Service ranges (traffic to an address in
    them that is no ClusterIP is dropped)."""
    node: str
    cluster_cidr: str
    node_ips: tuple[str, ...]
    service_cidrs: tuple[str, ...]
    masquerade_mark: str = "0x4000"


@dataclass
class _Tx:
    """The table's contents, kept by name so that two of them can be compared (``update``)."""
    sets: dict[str, str] = field(default_factory=dict)  # name -> its line
    chains: dict[str, str] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)  # chain -> its rules' lines
    elements: dict[tuple[str, str], str] = field(default_factory=dict)  # (set or map, key) -> its line

    def set(self, name: str, line: str) -> None:
        self.sets.setdefault(name, line)

    def chain(self, name: str, spec: str = "") -> None:
        self.chains.setdefault(name, f"add chain {TABLE} {name}" + (f" {spec}" if spec else ""))

    def rule(self, chain: str, rule: str, comment: str = "") -> None:
        self.rules.setdefault(chain, []).append(f"add rule {TABLE} {chain} {rule}"
                                                + (f' comment "{comment}"' if comment else ""))

    def element(self, container: str, key: str, value: str = "", comment: str = "") -> None:
        note = f' comment "{comment}"' if comment else ""
        self.elements[(container, key)] = (f"add element {TABLE} {container} {{ {key}{note}"
                                           + (f" : {value}" if value else "") + " }")

    def lines(self) -> list[str]:
        return (list(self.sets.values()) + list(self.chains.values())
                + [line for chain in self.chains for line in self.rules.get(chain, [])] + list(self.elements.values()))


def hash_and_truncate(name: str) -> str:
    name = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8] + "-" + name
    return name[:CHAIN_BASE_MAX - 3] + "..." if len(name) > CHAIN_BASE_MAX else name


def chain_base(svc: ServicePortView) -> str:
    return hash_and_truncate(f"{svc.namespace}/{svc.name}/{svc.protocol.lower()}/{svc.port_name}")


def endpoint_base(svc: ServicePortView, ep: EndpointView) -> str:
    return hash_and_truncate(f"{svc.namespace}/{svc.name}/{svc.protocol.lower()}/{svc.port_name}__{ep.ip}/{ep.port}")


def _base(tx: _Tx, opts: Options) -> None:
    mark = word(opts.masquerade_mark)
    for line in BASE_SETS:
        tx.set(line.split()[4], line)
    for chain in BASE_CHAINS:
        name, _, spec = chain.partition(" ")  # the base chains' hooks and comment
        tx.chain(name, spec)
    cidrs = ", ".join(word(c) for c in opts.service_cidrs)
    for chain, rule, comment in BASE_RULES:
        tx.rule(chain, rule.format(mark=mark, cidrs=cidrs), comment)
    for ip in opts.node_ips:
        tx.element("nodeport-ips", word(ip))


def _to_endpoints(tx: _Tx, svc: ServicePortView, chain: str, endpoints: tuple[EndpointView, ...]) -> None:
    if svc.affinity_timeout:
        for ep in endpoints:
            base = endpoint_base(svc, ep)
            tx.rule(chain, f"ip saddr @affinity-{base} goto endpoint-{base}")
    targets = " , ".join(f"{i} : goto endpoint-{endpoint_base(svc, ep)}" for i, ep in enumerate(endpoints))
    tx.rule(chain, f"numgen random mod {len(endpoints)} vmap {{ {targets} }}")


def _service(tx: _Tx, svc: ServicePortView, opts: Options, source_ranges: tuple[str, ...]) -> None:
    name, proto = port_name(svc), word(svc.protocol.lower())
    cluster_ip, port = word(svc.cluster_ip), svc.port
    decided = plan(svc, opts.node)
    eps, external_local, has_internal, has_external = (decided.endpoints, decided.external_local,
                                                       decided.has_internal, decided.has_external)
    base = chain_base(svc)
    cluster_chain, local_chain = f"service-{base}", f"local-{base}"
    ext_chain, fw_chain = f"external-{base}", f"firewall-{base}"
    internal_chain = local_chain if svc.internal_local else cluster_chain
    external_policy = local_chain if external_local else cluster_chain
    uses_cluster, uses_local, uses_ext = decided.uses_cluster, decided.uses_local, decided.uses_external_chain
    verdict = "drop" if eps.any else f"goto {REJECT_CHAIN}"
    for ep in eps.reachable:
        tx.chain(f"endpoint-{endpoint_base(svc, ep)}")
    if uses_cluster:
        tx.chain(cluster_chain)
    if uses_local:
        tx.chain(local_chain)
    if uses_ext:
        tx.chain(ext_chain)
    lb_ips = (svc.lb_ip,) if svc.lb_ip else ()
    uses_fw = bool(lb_ips) and bool(source_ranges)
    if uses_fw:
        tx.chain(fw_chain)
    tx.element("cluster-ips", cluster_ip)
    if has_internal:
        tx.element("service-ips", f"{cluster_ip} . {proto} . {port}", f"goto {internal_chain}")
    else:
        tx.element("no-endpoint-services", f"{cluster_ip} . {proto} . {port}", verdict, name)
    for ip in svc.external_ips:
        if eps.any:
            tx.element("service-ips", f"{word(ip)} . {proto} . {port}", f"goto {ext_chain}")
        if not has_external:
            tx.element("no-endpoint-services", f"{word(ip)} . {proto} . {port}", verdict, name)
    for ip in lb_ips:
        if eps.any:
            tx.element("service-ips", f"{word(ip)} . {proto} . {port}", f"goto {ext_chain}")
        if uses_fw:
            tx.element("firewall-ips", f"{word(ip)} . {proto} . {port}", f"goto {fw_chain}")
    if not has_external:
        for ip in lb_ips:
            tx.element("no-endpoint-services", f"{word(ip)} . {proto} . {port}", verdict, name)
    if svc.node_port:
        if eps.any:
            tx.element("service-nodeports", f"{proto} . {svc.node_port}", f"goto {ext_chain}")
        if not has_external:
            tx.element("no-endpoint-nodeports", f"{proto} . {svc.node_port}", verdict, name)
    if has_internal:
        tx.rule(internal_chain, f"ip daddr {cluster_ip} ip saddr != {word(opts.cluster_cidr)} jump mark-for-masquerade")
    if uses_ext:
        if not external_local:
            tx.rule(ext_chain, "jump mark-for-masquerade")
        else:
            tx.rule(ext_chain, f"ip saddr {word(opts.cluster_cidr)} goto {cluster_chain}", "short-circuit pod traffic")
            tx.rule(ext_chain, "fib saddr type local jump mark-for-masquerade", "masquerade local traffic")
            tx.rule(ext_chain, f"fib saddr type local goto {cluster_chain}", "short-circuit local traffic")
        if has_external:
            tx.rule(ext_chain, f"goto {external_policy}")
    if uses_fw:
        tx.rule(fw_chain, f"ip saddr != {{ {' , '.join(word(c) for c in source_ranges)} }} drop")
    if svc.affinity_timeout:
        for ep in eps.reachable:
            name = f"affinity-{endpoint_base(svc, ep)}"
            tx.set(name, f"add set {TABLE} {name} {{ type ipv4_addr ; flags dynamic,timeout ; "
                         f"timeout {svc.affinity_timeout}s ; }}")
    if uses_cluster:
        _to_endpoints(tx, svc, cluster_chain, eps.cluster)
    if uses_local:
        _to_endpoints(tx, svc, local_chain, eps.local)
    for ep in eps.reachable:
        base = endpoint_base(svc, ep)
        tx.rule(f"endpoint-{base}", f"ip saddr {word(ep.ip)} jump mark-for-masquerade")
        if svc.affinity_timeout:
            tx.rule(f"endpoint-{base}", f"update @affinity-{base} {{ ip saddr }}")
        tx.rule(f"endpoint-{base}", f"meta l4proto {proto} dnat to {word(ep.ip)}:{ep.port}")


def render(services: tuple[ServicePortView, ...] | list[ServicePortView], opts: Options) -> str:
    """The node's ``nft -f`` input: the ``ip kube-proxy`` table made afresh (a full sync).

    Raises:
        RenderError: a value that cannot be written (the spec layer refused it already).
    """
    head = [f'add table {TABLE} {{ comment "rules for kube-proxy" ; }}']
    return "\n".join(head + _build(services, opts).lines()) + "\n"


def _build(services, opts: Options) -> _Tx:
    tx = _Tx()
    _base(tx, opts)
    for svc in sorted((s for s in services if s.cluster_ip), key=lambda s: (port_name(s), s.protocol)):
        _service(tx, svc, opts, svc.source_ranges)
    return tx


def update(old: list[ServicePortView], new: list[ServicePortView], opts: Options) -> str:
    """A partial sync from what ``old`` gave to what ``new`` gives, as kube-proxy's nftables
    proxier makes one: new sets and chains, the chains whose rules changed flushed and written
    again, map elements deleted and added one by one, then the chains and sets no longer used
    flushed and deleted (kube-proxy waits a second before deleting a chain, for kernels before
    6.2; here it goes in the same transaction, after the elements that named it). One Service's
    change is a transaction of its own size, whatever the number of Services."""
    a, b = _build(old, opts), _build(new, opts)
    out = [line for name, line in b.sets.items() if name not in a.sets]
    out += [line for name, line in b.chains.items() if name not in a.chains]
    for name in b.chains:
        if b.rules.get(name, []) != a.rules.get(name, []):
            out += ([f"flush chain {TABLE} {name}"] if name in a.chains else []) + b.rules.get(name, [])
    for (container, key), line in a.elements.items():
        if b.elements.get((container, key)) != line:
            out.append(f"delete element {TABLE} {container} {{ {key} }}")
    out += [line for k, line in b.elements.items() if a.elements.get(k) != line]
    for name in a.chains:
        if name not in b.chains:
            out += [f"flush chain {TABLE} {name}", f"delete chain {TABLE} {name}"]
    out += [f"delete set {TABLE} {name}" for name in a.sets if name not in b.sets]
    return "\n".join(out) + ("\n" if out else "")
