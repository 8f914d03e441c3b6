"""kube-proxy's iptables and nftables rules (emulator/kubeproxy), checked against kube-proxy's own
test: TestOverallIPTablesRules in kubernetes/pkg/proxy/iptables/proxier_test.go builds six
Services (ClusterIP; LoadBalancer with Local traffic policy, an external IP and a health check
port; NodePort; an external IP; LoadBalancer with source ranges and ClientIP affinity; one
without endpoints) and compares syncProxyRules' output to an expected text. That text is in
tests/golden/kubeproxy/TestOverallIPTablesRules.iptables as upstream wrote it (never rewritten
by --update-golden); the same Services here must give it byte for byte. Likewise its nftables
test, TestOverallNFTablesRules (pkg/proxy/nftables/proxier_test.go), with the same Services:
tests/golden/kubeproxy/TestOverallNFTablesRules.nft."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import RenderError
from emulator.kubeproxy import iptables, nftables
from emulator.model.netview import EndpointView, ServicePortView
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_object

UPSTREAM = Path(__file__).resolve().parents[1] / "golden" / "kubeproxy" / "TestOverallIPTablesRules.iptables"
NODE = "test-node"


def port(i: int, ns: str, cluster_ip: str, *endpoints: EndpointView, **kw) -> ServicePortView:
    return ServicePortView(i, ns, ns.replace("ns", "svc"), "p80", "TCP", cluster_ip, 80, endpoints=endpoints, **kw)


UPSTREAM_SERVICES = [
    port(1, "ns1", "172.30.0.41", EndpointView("10.180.0.1", 80, "")),
    port(2, "ns2", "172.30.0.42", EndpointView("10.180.0.2", 80, ""), node_port=3001, lb_ip="1.2.3.4",
         external_local=True, external_ips=("192.168.99.22",), health_check_node_port=30000),
    port(3, "ns3", "172.30.0.43", EndpointView("10.180.0.3", 80, ""), node_port=3003),
    port(4, "ns4", "172.30.0.44", EndpointView("10.180.0.4", 80, ""), EndpointView("10.180.0.5", 80, NODE),
         external_ips=("192.168.99.33",)),
    port(5, "ns5", "172.30.0.45", EndpointView("10.180.0.3", 80, ""), node_port=3002, lb_ip="5.6.7.8",
         affinity_timeout=10800, source_ranges=("203.0.113.0/25",)),
    port(6, "ns6", "172.30.0.46"),
]
UPSTREAM_OPTIONS = iptables.Options(NODE, "10.0.0.0/8", nfacct=True)


def test_the_rules_are_kube_proxys_own_for_its_overall_test():
    got = iptables.render(UPSTREAM_SERVICES, UPSTREAM_OPTIONS)
    assert got == UPSTREAM.read_text()


def test_chain_names_hash_the_service_port_name_and_protocol_as_kube_proxy_does():
    svc = UPSTREAM_SERVICES[0]
    assert iptables.port_name(svc) == "ns1/svc1:p80"
    assert "KUBE-SVC-" + iptables.chain_base(svc) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert iptables.endpoint_chain(svc, svc.endpoints[0]) == "KUBE-SEP-SXIVWICOYRO3J4NJ"
    unnamed = ServicePortView(9, "default", "web", "", "UDP", "10.96.0.9", 53)
    assert iptables.port_name(unnamed) == "default/web"  # an unnamed port: no ":"


def test_three_endpoints_take_a_third_then_a_half_then_the_rest():
    svc = port(1, "ns1", "172.30.0.41", *(EndpointView(f"10.180.0.{i}", 8080, "") for i in (3, 1, 2)))
    rules = [line for line in iptables.render([svc], UPSTREAM_OPTIONS).splitlines()
             if line.startswith("-A KUBE-SVC-") and "->" in line]
    assert ["10.180.0.1", "10.180.0.2", "10.180.0.3"] == [r.split("-> ")[1].split(":")[0] for r in rules]
    assert "--probability 0.3333333333" in rules[0] and "--probability 0.5000000000" in rules[1]
    assert "statistic" not in rules[2]


def test_internal_traffic_policy_local_uses_only_this_nodes_endpoints_or_drops():
    local = EndpointView("10.180.0.7", 80, NODE)
    remote = EndpointView("10.180.0.8", 80, "other")
    here = iptables.render([port(1, "ns1", "172.30.0.41", local, remote, internal_local=True)], UPSTREAM_OPTIONS)
    assert "-j KUBE-SVL-" in here and "KUBE-SVC-" not in here and "10.180.0.8" not in here
    elsewhere = iptables.render([port(1, "ns1", "172.30.0.41", remote, internal_local=True)], UPSTREAM_OPTIONS)
    assert '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp -p tcp ' \
           "-d 172.30.0.41 --dport 80 -j DROP" in elsewhere


def test_serving_terminating_endpoints_are_used_only_when_none_is_ready():
    ready, ending = EndpointView("10.180.0.1", 80, ""), EndpointView("10.180.0.2", 80, "")
    both = iptables.render([port(1, "ns1", "172.30.0.41", ready, terminating=(ending,))], UPSTREAM_OPTIONS)
    assert "10.180.0.1:80" in both and "10.180.0.2" not in both
    only = iptables.render([port(1, "ns1", "172.30.0.41", ending, terminating=(ending,))], UPSTREAM_OPTIONS)
    assert "--to-destination 10.180.0.2:80" in only


@pytest.mark.parametrize("field, value", [("cluster_ip", "10.96.0.1 -j ACCEPT"), ("external_ips", ("1.2.3.4\n-F",)),
                                          ("namespace", 'ns"1')])
def test_a_value_that_would_be_syntax_is_refused(field: str, value) -> None:
    svc = port(1, "ns1", "172.30.0.41", EndpointView("10.180.0.1", 80, ""))
    with pytest.raises(RenderError):
        iptables.render([ServicePortView(**{**{f: getattr(svc, f) for f in svc.__dataclass_fields__},
                                            field: value})], UPSTREAM_OPTIONS)


UPSTREAM_NFT = UPSTREAM.with_name("TestOverallNFTablesRules.nft")
NFT_OPTIONS = nftables.Options(NODE, "10.0.0.0/8", ("192.168.0.2",), ("172.30.0.0/16",))


def lines(text: str) -> list[str]:
    """The transaction's statements in any order, without blank and ``#`` lines: how kube-proxy's
    TestOverallNFTablesRules compares (its expectation is grouped by Service, the dump is not)."""
    return sorted(line for line in text.splitlines() if line.strip() and not line.startswith("#"))


def test_the_nftables_rules_are_kube_proxys_own_for_its_overall_test():
    got = nftables.render(UPSTREAM_SERVICES, NFT_OPTIONS)
    assert lines(got) == lines(UPSTREAM_NFT.read_text())


def test_nftables_chain_names_are_kube_proxys():
    svc = UPSTREAM_SERVICES[0]
    assert "service-" + nftables.chain_base(svc) == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert "endpoint-" + nftables.endpoint_base(svc, svc.endpoints[0]) == \
        "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"


def test_the_nftables_transaction_names_every_chain_before_a_rule_or_element_uses_it():
    got = nftables.render(UPSTREAM_SERVICES, NFT_OPTIONS).splitlines()
    declared = set()
    for line in got:
        words = line.split()
        if line.startswith(("add chain", "add set", "add map")):
            declared.add(words[4])
        for used in [w for w in words if w.startswith(("service-", "endpoint-", "external-", "firewall-"))]:
            if not line.startswith("add chain"):
                assert used.lstrip("@") in declared, line


def without_endpoint(services: list[ServicePortView], index: int, ip: str) -> list[ServicePortView]:
    svc = services[index]
    changed = ServicePortView(**{**{f: getattr(svc, f) for f in svc.__dataclass_fields__},
                                 "endpoints": tuple(e for e in svc.endpoints if e.ip != ip)})
    return [changed if i == index else s for i, s in enumerate(services)]


def test_an_iptables_partial_sync_rewrites_the_top_chains_and_only_the_changed_services_chains():
    new = without_endpoint(UPSTREAM_SERVICES, 3, "10.180.0.5")  # ns4/svc4 loses one of its two endpoints
    update = iptables.render_update(UPSTREAM_SERVICES, new, UPSTREAM_OPTIONS)
    lines = update.splitlines()
    nat = update.split("*nat\n")[1].splitlines()
    assert sum(1 for line in nat if line.startswith("-A KUBE-SERVICES ")) == 10  # every Service's rule again
    assert ":KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]" in lines  # the changed Service's chain, written again
    assert ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]" not in lines  # ns1/svc1 unchanged: left as it is
    assert "-X KUBE-SEP-C6EBXVWJJZMIWKLZ" in lines  # the endpoint's chain goes
    assert "-j KUBE-SEP-UKSFD7AGPMPPLUHC" in update and "probability" not in update.split("KUBE-SVC-4SW47")[-1]


def test_an_nftables_partial_sync_is_the_changed_services_size():
    new = without_endpoint(UPSTREAM_SERVICES, 3, "10.180.0.5")
    update = nftables.update(UPSTREAM_SERVICES, new, NFT_OPTIONS).splitlines()
    assert update == [
        "flush chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80",
        "add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 "
        "jump mark-for-masquerade",
        "add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 1 vmap "
        "{ 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 }",
        "flush chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80",
        "delete chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80"]
    assert nftables.update(UPSTREAM_SERVICES, UPSTREAM_SERVICES, NFT_OPTIONS) == ""


def test_load_balancer_source_ranges_are_checked_as_the_api_server_checks_them():
    """CIDRs only (spaces trimmed, host bits allowed and read as the network by the proxies), on a
    LoadBalancer Service only; stored as written and carried to the data plane's view."""
    text = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: %s
  selector: {app: web}
  ports: [{port: 80}]
  loadBalancerSourceRanges: %s
"""
    objs, problems, _ = parse_object(load_text(text % ("LoadBalancer", '[" 10.1.2.3/24", 192.0.2.0/25]'), "s.yaml")[0])
    assert problems == [] and objs[0].source_ranges == (" 10.1.2.3/24", "192.0.2.0/25")
    assert objs[0].source_networks == ("10.1.2.0/24", "192.0.2.0/25")
    _, problems, _ = parse_object(load_text(text % ("LoadBalancer", "[10.0.0.1, fd00::/8]"), "s.yaml")[0])
    assert [p.message for p in problems] == [
        "Invalid value: '10.0.0.1': must be a list of IP ranges. For example, 10.0.0.0/24",
        "Invalid value: 'fd00::/8': must be a list of IP ranges. For example, 10.0.0.0/24 (IPv6 is not emulated)"]
    _, problems, _ = parse_object(load_text(text % ("NodePort", "[10.0.0.0/8]"), "s.yaml")[0])
    assert [(p.field, p.message) for p in problems] == [
        ("spec.loadBalancerSourceRanges", "Forbidden: may only be used when `type` is 'LoadBalancer'")]
