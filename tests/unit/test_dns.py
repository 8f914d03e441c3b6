"""The DNS server's pure parts: Corefile parsing and the Kubernetes record builder."""
from __future__ import annotations

import dns.rcode
import pytest

from emulator.dns import plugins
from emulator.model.corefile import CorefileError, default_corefile, hosts_corefile, parse, render
from emulator.dns.records import Options, resolve

SNAPSHOT = {
    "namespaces": ["default", "shop", "kube-system"],
    "services": [
        {"name": "web", "namespace": "default", "type": "ClusterIP", "cluster_ip": "10.96.5.5",
         "external_name": "", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
         "endpoints": [{"ip": "10.244.1.2", "hostname": "", "pod": "web-a", "ready": True,
                        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]},
        {"name": "db", "namespace": "shop", "type": "ClusterIP", "cluster_ip": "None", "external_name": "",
         "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
         "endpoints": [{"ip": "10.244.2.7", "hostname": "db-0", "pod": "db-0", "ready": True,
                        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]},
                       {"ip": "10.244.1.9", "hostname": "", "pod": "db-1", "ready": True,
                        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]},
                       {"ip": "10.244.1.10", "hostname": "", "pod": "db-2", "ready": False, "ports": []}]},
        {"name": "api", "namespace": "shop", "type": "ExternalName", "cluster_ip": "",
         "external_name": "api.example.com", "ports": [], "endpoints": []},
    ],
    "pods": [{"name": "db-0", "namespace": "shop", "ip": "10.244.2.7"}],
}
OPTS = Options(["cluster.local.", "in-addr.arpa.", "ip6.arpa."], pods="insecure", ttl=30)


def ask(name: str, qtype: str = "A", opts: Options = OPTS):
    ans = resolve(SNAPSHOT, name, qtype, opts)
    return ans and (dns.rcode.to_text(ans.rcode), sorted(r.to_text() for rr in ans.records for r in [rr]))


def values(name: str, qtype: str = "A", opts: Options = OPTS) -> list[str]:
    ans = resolve(SNAPSHOT, name, qtype, opts)
    return sorted(item.to_text() for rr in ans.records for item in rr)


def test_default_corefile_parses_like_kubeadms() -> None:
    (block,) = parse(default_corefile("cluster.local"))
    assert block.zones == ["."] and block.port == 53
    assert [p.name for p in block.plugins] == ["errors", "health", "ready", "kubernetes", "prometheus",
                                               "forward", "cache", "loop", "reload", "loadbalance"]
    kube = block.plugin("kubernetes")
    opts, fallthrough = plugins.kubernetes_options(kube, block.zones, "Corefile")
    assert opts.zones == ["cluster.local.", "in-addr.arpa.", "ip6.arpa."] and opts.pods == "insecure"
    assert opts.ttl == 30 and fallthrough == ["in-addr.arpa.", "ip6.arpa."]


EDITED = """# a user's edit of the coredns ConfigMap
example.org:1053 example.net:1053 {
  hosts {   # inline entries
     10.0.0.1 a.example  "b c"
     fallthrough
  }
  rewrite name regex (.*)-x.example {1}.default.svc.cluster.local
  forward . 1.1.1.1 'x;rm -rf /'
}
"""


def _shape(blocks) -> list:
    return [(b.zones, b.port, [(d.name, d.args, [(s.name, s.args) for s in d.block]) for d in b.plugins])
            for b in blocks]


def test_a_corefile_is_written_back_as_parsed_with_every_word_quoted_where_it_must_be(golden) -> None:
    """What reaches the coredns pods from the ConfigMap: the parse written back, which parses to
    the same thing (no word can become a line, a block or a comment)."""
    for text in (EDITED, default_corefile("cluster.local")):
        rendered = render(parse(text))
        assert _shape(parse(rendered)) == _shape(parse(text))
        assert render(parse(rendered)) == rendered
    golden("configs/Corefile.edited-rendered", render(parse(EDITED)))


def test_rendered_corefiles_match_their_golden_files(golden) -> None:
    golden("configs/Corefile.cluster.example", default_corefile("cluster.example"))
    golden("configs/Corefile.external-dns", hosts_corefile([("example.com", "172.18.0.250"),
                                                             ("Mirror.Example.org.", "172.18.0.251")]))


@pytest.mark.parametrize("domain", ["cluster.local\nnameserver 6.6.6.6", "a b", "x}", "cluster.local.",
                                    "", "-bad", "a" * 254, "corp.local {\n whoami\n}"])
def test_a_cluster_domain_that_would_add_words_is_refused(domain: str) -> None:
    with pytest.raises(CorefileError):
        default_corefile(domain)


@pytest.mark.parametrize("name,ip", [("evil.com\n}\n. {\n forward . 6.6.6.6", "1.2.3.4"), ("a b", "1.2.3.4"),
                                     ("x", "1.2.3.4 6.6.6.6"), ("x", "::1"), ("}", "1.2.3.4"), ("a;b", "1.1.1.1")])
def test_an_external_record_that_would_add_syntax_is_refused(name: str, ip: str) -> None:
    with pytest.raises(CorefileError):
        hosts_corefile([(name, ip)])


@pytest.mark.parametrize("text,line,message", [
    (".:53 {\n  errors\n  cahce 30\n}\n", 3, "Unknown directive 'cahce'"),
    (".:53 {\n  errors\n", 2, "unexpected EOF"),
    ("errors\n", 1, "expected a server block"),
    (".:5x3 {\n}\n", 1, "invalid port"),
    ("a.example:53 b.example:1053 {\n  errors\n}\n", 1, "give its zones the same port"),
])
def test_corefile_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(CorefileError) as info:
        parse(text)
    assert info.value.line == line and message in str(info.value)
    assert str(info.value).startswith(f"Corefile:{line} - Error during parsing: ")


def test_kubernetes_properties_are_checked() -> None:
    (block,) = parse(".:53 {\n kubernetes cluster.local {\n  pods sometimes\n }\n}\n")
    with pytest.raises(CorefileError) as info:
        plugins.kubernetes_options(block.plugin("kubernetes"), block.zones, "Corefile")
    assert info.value.line == 3


def test_service_records() -> None:
    assert values("web.default.svc.cluster.local.") == ["10.96.5.5"]
    assert values("WEB.default.svc.cluster.local") == ["10.96.5.5"]
    assert values("db.shop.svc.cluster.local.") == ["10.244.1.9", "10.244.2.7"]  # ready endpoints only
    assert values("db-0.db.shop.svc.cluster.local.") == ["10.244.2.7"]
    assert values("10-244-1-9.db.shop.svc.cluster.local.") == ["10.244.1.9"]
    assert values("api.shop.svc.cluster.local.") == ["api.example.com."]


def test_srv_records() -> None:
    assert values("_http._tcp.web.default.svc.cluster.local.", "SRV") == ["0 100 80 web.default.svc.cluster.local."]
    assert values("_pg._tcp.db.shop.svc.cluster.local.", "SRV") == [
        "0 100 5432 10-244-1-9.db.shop.svc.cluster.local.", "0 100 5432 db-0.db.shop.svc.cluster.local."]
    assert ask("_nope._tcp.web.default.svc.cluster.local.", "SRV")[0] == "NXDOMAIN"


def test_ptr_pod_and_version_records() -> None:
    assert values("5.5.96.10.in-addr.arpa.", "PTR") == ["web.default.svc.cluster.local."]
    assert values("7.2.244.10.in-addr.arpa.", "PTR") == ["db-0.db.shop.svc.cluster.local."]
    assert resolve(SNAPSHOT, "9.9.9.9.in-addr.arpa.", "PTR", OPTS) is None  # not ours: fall through
    assert values("10-244-2-7.shop.pod.cluster.local.") == ["10.244.2.7"]
    assert values("dns-version.cluster.local.", "TXT") == ['"1.1.0"']


def test_pods_modes() -> None:
    verified = Options(OPTS.zones, pods="verified")
    disabled = Options(OPTS.zones, pods="disabled")
    assert values("10-244-2-7.shop.pod.cluster.local.", opts=verified) == ["10.244.2.7"]
    assert ask("10-244-2-8.shop.pod.cluster.local.", opts=verified)[0] == "NXDOMAIN"
    assert values("10-244-2-8.shop.pod.cluster.local.") == ["10.244.2.8"]  # insecure: any address
    assert ask("10-244-2-7.shop.pod.cluster.local.", opts=disabled)[0] == "NXDOMAIN"


def test_nxdomain_versus_no_data() -> None:
    assert ask("nope.default.svc.cluster.local.") == ("NXDOMAIN", [])
    assert ask("web.default.svc.cluster.local.", "AAAA") == ("NOERROR", [])
    assert ask("shop.svc.cluster.local.") == ("NOERROR", [])
    assert ask("nope.svc.cluster.local.") == ("NXDOMAIN", [])
    assert ask("web.nope.svc.cluster.local.") == ("NXDOMAIN", [])
    assert resolve(SNAPSHOT, "www.example.com.", "A", OPTS) is None  # outside the zone


def test_endpoint_pod_names() -> None:
    opts = Options(OPTS.zones, endpoint_pod_names=True)
    assert values("db-1.db.shop.svc.cluster.local.", opts=opts) == ["10.244.1.9"]


def test_cache_ttls_and_rewrite() -> None:
    (block,) = parse(".:53 {\n cache 30 {\n  success 100 20\n  denial 100 5\n }\n}\n")
    cache = plugins.Cache.from_directive(block.plugin("cache"), "Corefile")
    assert (cache.success_ttl, cache.denial_ttl, cache.capacity) == (20, 5, 100)
    (block,) = parse(".:53 {\n rewrite name suffix .corp.example. .svc.cluster.local.\n"
                     " rewrite name regex (.*)\\.db\\.internal {1}.shop.svc.cluster.local\n}\n")
    rewrites = [plugins.Rewrite.from_directive(d, "Corefile") for d in block.plugins]
    assert rewrites[0].apply("web.default.corp.example.") == "web.default.svc.cluster.local."
    assert rewrites[1].apply("db.db.internal.") == "db.shop.svc.cluster.local."
    assert rewrites[0].apply("other.name.") is None
