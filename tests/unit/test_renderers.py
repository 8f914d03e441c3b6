"""Every renderer that writes a file or an argv from cluster data: a golden file for a fixed
input, and hostile values per field that must be refused (never written, never a second line)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from emulator.cli.plan import simulate
from emulator.cluster.dataplane import network_view
from emulator.errors import RenderError
from emulator.images import nginx as nginx_image
from emulator.model import podfiles
from emulator.model.meta import ObjectMeta
from emulator.model.pod import Container, Pod, PodSpec
from emulator.pipeline import hostrules

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def pod(dns_config: dict | None = None, policy: str = "ClusterFirst", hostname: str = "", subdomain: str = "",
        aliases: tuple = ()) -> Pod:
    raw = {"dnsConfig": dns_config} if dns_config is not None else {}
    return Pod(ObjectMeta("web-0", "shop"), PodSpec((Container("c", "busybox"),), dns_policy=policy, raw=raw,
                                                    hostname=hostname, subdomain=subdomain, host_aliases=aliases))


def test_node_iptables_rules_match_their_golden_file(golden) -> None:
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    node = view.node("worker-1")
    golden("configs/iptables-nat.worker-1", hostrules.iptables_nat(view, node, "10.244.0.0/16"))


def test_external_ip_rules_match_their_golden_file(golden) -> None:
    """spec.externalIPs: DNAT to the cluster IP on the Service's port, SNAT by the original
    destination so the reply comes back through the node."""
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    first = replace(view.services[0], external_ips=("192.0.2.10", "198.51.100.7"))
    view = replace(view, services=(first,))
    golden("configs/iptables-nat.external-ips", hostrules.iptables_nat(view, view.node("worker-1"), "10.244.0.0/16"))


def test_host_port_rules_match_their_golden_file(golden) -> None:
    """hostPort as portmap: the node's address (or hostIP) DNATed to the pod; pods and the
    node's loopback calling it SNATed; only this node's pods."""
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    pods = tuple(replace(p, host_ports=(("TCP", "", 8080, 80), ("UDP", "127.0.0.1", 5353, 53)))
                 if p.name.startswith("web") else p for p in view.pods)
    view = replace(view, pods=pods, services=())
    golden("configs/iptables-nat.host-ports", hostrules.iptables_nat(view, view.node("worker-1"), "10.244.0.0/16"))
    assert hostrules.loopback_host_ports(view, view.node("worker-1"))
    assert not hostrules.loopback_host_ports(view, view.node("control-plane"))


def test_external_ips_of_a_local_service_follow_the_load_balancer_path(golden) -> None:
    """externalTrafficPolicy Local (a NodePort Service here): an external IP is DNATed like the
    LoadBalancer address (client kept, node-local endpoints); a pod's call never reaches these
    rules (OVS short-circuits it: tests/unit/test_pipeline.py)."""
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    local = next(s for s in view.services if s.external_local and s.protocol == "TCP")
    view = replace(view, services=(replace(local, external_ips=("192.0.2.11",)),))
    golden("configs/iptables-nat.external-ips-local",
           hostrules.iptables_nat(view, view.node("worker-1"), "10.244.0.0/16"))


def test_load_balancer_source_ranges_match_their_golden_file(golden) -> None:
    """loadBalancerSourceRanges on the OpenFlow plane's hosts: the LoadBalancer address is DNATed
    for those sources only, and new connections from anywhere else are dropped in the filter
    table (kube-proxy's KUBE-FW and KUBE-PROXY-FIREWALL); a Service without ranges adds no rule."""
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    lb = next(s for s in view.services if s.lb_ip and not s.external_local)
    view = replace(view, services=(replace(lb, source_ranges=("172.18.0.254/32", "192.0.2.0/24")),))
    node = view.node("worker-1")
    golden("configs/iptables.source-ranges",
           hostrules.iptables_nat(view, node, "10.244.0.0/16") + hostrules.iptables_filter(view))
    assert "-j DROP" not in hostrules.iptables_filter(replace(view, services=(lb,)))


def test_pod_files_match_their_golden_files(golden) -> None:
    options = [{"name": "ndots", "value": "2"}, {"name": "edns0"}]
    p = pod({"nameservers": ["1.1.1.1"], "searches": ["corp.example."], "options": options},
            hostname="web-0", subdomain="web", aliases=(("10.1.2.3", ("foo.local", "bar.local")),))
    golden("configs/resolv.conf.dnsconfig", podfiles.resolv_conf(p, "10.96.0.10", "cluster.local"))
    golden("configs/hosts.subdomain-aliases", podfiles.hosts_file("web-0", "10.244.1.5",
                                                                  podfiles.pod_fqdn(p, "cluster.local"),
                                                                  p.spec.host_aliases))


def test_the_nginx_image_config_matches_its_golden_file(golden) -> None:
    conf, page = nginx_image.render({"pod_name": "web-<x>", "pod_namespace": "d", "pod_ip": "1.2.3.4",
                                     "node_name": "n"}, "/run/k8semu/pod/web")
    golden("configs/nginx-image.conf", conf)
    assert "web-&lt;x&gt;" in page
    files, folders, argv = nginx_image.prepare({"pod_name": "p", "pod_namespace": "d", "pod_ip": "1.2.3.4",
                                                "node_name": "n"}, "/run/k8semu/pod/web",
                                               ["nginx", "nginx", "-g", "daemon off;", "-T"])
    assert argv == ["nginx", "-c", "/run/k8semu/pod/web/nginx.conf", "-p", "/run/k8semu/pod/web", "-T"]
    assert files["nginx.conf"] == nginx_image.render({"pod_name": "p", "pod_namespace": "d", "pod_ip": "1.2.3.4",
                                                      "node_name": "n"}, "/run/k8semu/pod/web")[0]
    assert "html" in folders and "html/index.html" in files


def test_the_nginx_image_serves_the_volumes_mounted_where_the_real_image_reads():
    """As the real image: a volume at /usr/share/nginx/html (or a file in it) is what the default
    server serves; a volume at /etc/nginx/conf.d brings the servers instead of the default one."""
    who = {"pod_name": "p", "pod_namespace": "d", "pod_ip": "1.2.3.4", "node_name": "n"}
    plain = nginx_image.render(who, "/c")[0]
    assert "root /c/html;" in plain and "include" not in plain
    html = nginx_image.render(who, "/c", ("/usr/share/nginx/html",))[0]
    assert "root /usr/share/nginx/html;" in html
    assert "root /usr/share/nginx/html;" in nginx_image.render(who, "/c", ("/usr/share/nginx/html/index.html",))[0]
    conf_d = nginx_image.render(who, "/c", ("/etc/nginx/conf.d",))[0]
    assert "include /etc/nginx/conf.d/*.conf;" in conf_d and "listen 80" not in conf_d
    assert "root /c/html;" in nginx_image.render(who, "/c", ("/usr/share/nginx/htmlx",))[0]  # not the folder


@pytest.mark.parametrize("config", [
    {"options": [{"name": "ndots:5\nnameserver 6.6.6.6"}]},
    {"options": [{"name": "ndots", "value": "1 rotate"}]},
    {"options": [{"name": ""}]},
    {"searches": ["a.com\nnameserver 6.6.6.6"]},
    {"searches": ["a com"]},
    {"nameservers": ["6.6.6.6\nsearch evil"]},
    {"nameservers": ["not-an-ip"]},
])
def test_a_dns_config_word_that_would_split_resolv_conf_is_refused(config: dict) -> None:
    with pytest.raises(RenderError):
        podfiles.resolv_conf(pod(config), "10.96.0.10", "cluster.local")


@pytest.mark.parametrize("domain", ["cluster.local\nnameserver 6.6.6.6", "a b"])
def test_a_cluster_domain_that_would_split_resolv_conf_is_refused(domain: str) -> None:
    with pytest.raises(RenderError):
        podfiles.resolv_conf(pod(), "10.96.0.10", domain)


@pytest.mark.parametrize("hostname,ip,aliases", [
    ("web\n6.6.6.6 evil", "10.1.1.1", ()), ("web", "10.1.1.1\n6.6.6.6 x", ()),
    ("web", "10.1.1.1", (("10.2.2.2", ("a\tb",)),)), ("web", "10.1.1.1", (("x y", ("a",)),)),
])
def test_a_hosts_file_word_that_would_add_lines_is_refused(hostname: str, ip: str, aliases: tuple) -> None:
    with pytest.raises(RenderError):
        podfiles.hosts_file(hostname, ip, "", aliases)


@pytest.mark.parametrize("text", ['svc"x', "a\\b"])
def test_iptables_comments_are_quoted(text: str) -> None:
    rendered = hostrules.comment(text)
    inner = rendered[len('-m comment --comment "'):-1]
    assert '"' not in inner.replace('\\"', "").replace("\\\\", "")


@pytest.mark.parametrize("text", ["a\nCOMMIT", "x" * 256, "a\x00"])
def test_iptables_comments_refuse_control_characters_and_length(text: str) -> None:
    with pytest.raises(RenderError):
        hostrules.comment(text)
