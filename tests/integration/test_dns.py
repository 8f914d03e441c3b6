"""Cluster DNS as pods see it: every record kind, the search path, live updates, forwarding
to the external zone, cache TTLs, TCP for large answers, metrics, and a bad Corefile."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path


from tests.cluster import Cluster, k8semu, kubectl, module_cluster, poll


# the other data planes run in make slow (make test's budget): flannel, calico
OTHER_PLANES = ("topologies/dns-flannel.yaml", "topologies/dns-calico.yaml")
dns_cluster = module_cluster("topologies/dns.yaml", *OTHER_PLANES, slow=OTHER_PLANES)


def dig(cluster: Cluster, *args: str, source: str = "client", namespace: str | None = None) -> str:
    return cluster.exec(source, "dig", "+time=2", "+tries=1", *args, namespace=namespace).stdout


def short(cluster: Cluster, *args: str, **kw) -> list[str]:
    return sorted(dig(cluster, "+short", *args, **kw).split())


def status(out: str) -> str:
    return re.search(r"status: (\w+)", out).group(1)


def cip(name: str, namespace: str = "default") -> str:
    return json.loads(k8semu("get", "svc", name, "-n", namespace, "-o", "json").stdout)["spec"]["clusterIP"]


def test_coredns_runs_behind_kube_dns(dns_cluster: Cluster) -> None:
    pods = dns_cluster.get("pods", "kube-system", "k8s-app=kube-dns")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
    assert cip("kube-dns", "kube-system") == "10.96.0.10"
    ports = k8semu("get", "svc", "kube-dns", "-n", "kube-system").stdout
    assert "53/UDP,53/TCP,9153/TCP" in ports
    assert len(k8semu("get", "endpoints", "kube-dns", "-n", "kube-system", "-o", "json").stdout.split('"ip"')) > 2


def test_pod_resolv_conf_and_short_names(dns_cluster: Cluster) -> None:
    resolv = dns_cluster.exec("client", "cat", "/etc/resolv.conf").stdout
    assert resolv == ("search default.svc.cluster.local svc.cluster.local cluster.local\n"
                      "nameserver 10.96.0.10\noptions ndots:5\n")
    out = dns_cluster.exec("client", "nslookup", "web").stdout
    assert "web.default.svc.cluster.local" in out and cip("web") in out
    assert short(dns_cluster, "web.default.svc.cluster.local") == [cip("web")]
    assert "Welcome to nginx!" in dns_cluster.exec("client", "curl", "-s", "-m", "3", "http://web/").stdout


def test_search_path_walk(dns_cluster: Cluster) -> None:
    assert short(dns_cluster, "+search", "db") == []  # db lives in shop, not default
    assert len(short(dns_cluster, "+search", "db.shop")) == 1  # name.ns works
    assert status(dig(dns_cluster, "db.default.svc.cluster.local")) == "NXDOMAIN"


def test_record_kinds(dns_cluster: Cluster) -> None:
    web_pods = sorted(p["status"]["podIP"] for p in dns_cluster.get("pods", "default", "app=web"))
    assert short(dns_cluster, "web-headless.default.svc.cluster.local") == web_pods
    db_ip = dns_cluster.pod("db-0", "shop")["status"]["podIP"]
    assert short(dns_cluster, "db-0.db.shop.svc.cluster.local") == [db_ip]
    assert short(dns_cluster, "SRV", "_http._tcp.web.default.svc.cluster.local") == \
        sorted(["0", "100", "80", "web.default.svc.cluster.local."])
    assert short(dns_cluster, "SRV", "_pg._tcp.db.shop.svc.cluster.local") == \
        sorted(["0", "100", "5432", "db-0.db.shop.svc.cluster.local."])
    assert short(dns_cluster, "-x", cip("web")) == ["web.default.svc.cluster.local."]
    assert short(dns_cluster, f"{db_ip.replace('.', '-')}.shop.pod.cluster.local") == [db_ip]
    assert short(dns_cluster, "api.shop.svc.cluster.local") == ["172.18.0.250", "api.example.com."]
    assert short(dns_cluster, "TXT", "dns-version.cluster.local") == ['"1.1.0"']
    nodata = dig(dns_cluster, "AAAA", "web.default.svc.cluster.local")
    assert status(nodata) == "NOERROR" and "ANSWER: 0" in nodata and "flags: qr aa" in nodata


def test_forwarding_to_the_external_zone(dns_cluster: Cluster) -> None:
    assert short(dns_cluster, "www.example.com") == ["93.184.216.34"]
    assert status(dig(dns_cluster, "nothing.example.com")) == "NXDOMAIN"
    log = (dns_cluster.run / "upstream-dns.dns.log").read_text()
    assert "www.example.com." in log  # the emulated upstream answered, not this machine's resolver


def test_live_updates_without_restart(dns_cluster: Cluster) -> None:
    restarts = [p["status"]["containerStatuses"][0]["restartCount"]
                for p in dns_cluster.get("pods", "kube-system", "k8s-app=kube-dns")]
    dns_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: late}\n"
                      "spec: {selector: {app: web}, ports: [{port: 81}]}\n")
    start = time.monotonic()
    poll(lambda: short(dns_cluster, "late.default.svc.cluster.local") == [cip("late")], timeout=5,
         what="the new Service in DNS")
    assert time.monotonic() - start < 1.5
    k8semu("delete", "svc", "late")
    poll(lambda: status(dig(dns_cluster, "late.default.svc.cluster.local")) == "NXDOMAIN", timeout=5,
         what="the deleted Service to disappear")
    assert [p["status"]["containerStatuses"][0]["restartCount"]
            for p in dns_cluster.get("pods", "kube-system", "k8s-app=kube-dns")] == restarts


def test_cache_counts_down_forwarded_ttls(dns_cluster: Cluster) -> None:
    def ttl() -> int:
        line = dig(dns_cluster, "+noall", "+answer", "www.example.com").split()
        return int(line[1])
    first = ttl()
    assert first <= 30  # `cache 30` caps the upstream's 3600 s
    poll(lambda: ttl() < first, timeout=5, interval=0.5, what="the cached TTL to count down")


def test_large_answers_truncate_over_udp_and_come_whole_over_tcp(dns_cluster: Cluster) -> None:
    k8semu("scale", "deployment/web", "--replicas", "40")
    try:
        poll(lambda: len(short(dns_cluster, "+tcp", "web-headless.default.svc.cluster.local")) == 40,
             timeout=60, what="40 ready endpoints")
        udp = dig(dns_cluster, "+notcp", "+ignore", "+bufsize=512", "web-headless.default.svc.cluster.local")
        assert "flags: qr aa tc" in udp
        assert len(short(dns_cluster, "web-headless.default.svc.cluster.local")) == 40  # dig retries over TCP
        edns = dig(dns_cluster, "+bufsize=4096", "+notcp", "+ignore", "web-headless.default.svc.cluster.local")
        assert " tc" not in edns.split("flags:")[1].split(";")[0] and "; EDNS: version: 0" in edns
    finally:
        k8semu("scale", "deployment/web", "--replicas", "2")


def test_metrics_health_and_ready(dns_cluster: Cluster) -> None:
    dns_ip = dns_cluster.get("pods", "kube-system", "k8s-app=kube-dns")[0]["status"]["podIP"]
    for _ in range(2):  # a miss, then a cache hit, on this replica
        assert short(dns_cluster, f"@{dns_ip}", "web.default.svc.cluster.local") == [cip("web")]
    metrics = dns_cluster.exec("client", "curl", "-s", f"http://{dns_ip}:9153/metrics").stdout
    assert re.search(r'coredns_dns_requests_total\{.*type="A".*\} \d+', metrics)
    assert "coredns_cache_hits_total" in metrics and "coredns_dns_responses_total" in metrics
    assert dns_cluster.exec("client", "curl", "-s", f"http://{dns_ip}:8080/health").stdout == "OK"
    assert dns_cluster.exec("client", "curl", "-s", f"http://{dns_ip}:8181/ready").stdout == "OK"


def test_dns_command(dns_cluster: Cluster) -> None:
    out = k8semu("dns", "api.shop", "--from", "client").stdout
    assert "api.shop A -> NOERROR" in out and "api.example.com." in out
    assert k8semu("dns", "missing", "--from", "client", check=False).returncode == 1


def test_editing_the_coredns_configmap_reconfigures_the_dns_pods(dns_cluster: Cluster) -> None:
    """The course's "kubectl -n kube-system edit configmap coredns": a hosts entry added to the
    Corefile answers from every coredns pod; a Corefile that does not parse is refused with a
    Warning Event and the pods keep the one they run; the pods are never restarted."""
    def patch(text: str) -> None:
        kubectl("-n", "kube-system", "patch", "configmap", "coredns", "--type=merge",
                "-p", json.dumps({"data": {"Corefile": text}}))

    def answers(name: str) -> list[list[str]]:  # from each coredns pod, not through the Service
        return [short(dns_cluster, f"@{ip}", name) for ip in coredns_ips]

    pods = dns_cluster.get("pods", "kube-system", "k8s-app=kube-dns")
    coredns_ips = [p["status"]["podIP"] for p in pods]
    restarts = [p["status"]["containerStatuses"][0]["restartCount"] for p in pods]
    original = json.loads(kubectl("-n", "kube-system", "get", "configmap", "coredns", "-o", "json").stdout)[
        "data"]["Corefile"]
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in original and "reload" in original
    edited = original.replace("    prometheus :9153\n",
                              "    hosts {\n       10.20.30.40 db.example.test\n       fallthrough\n    }\n"
                              "    prometheus :9153\n")
    assert edited != original
    try:
        patch(edited)
        poll(lambda: answers("db.example.test") == [["10.20.30.40"]] * len(coredns_ips), timeout=10,
             what="every coredns pod to answer from the edited Corefile")
        patch(".:53 {\n    errors\n    cahce 30\n}\n")
        poll(lambda: "Unknown directive 'cahce'" in kubectl(
            "-n", "kube-system", "get", "events", "--field-selector",
            "involvedObject.name=coredns,involvedObject.kind=ConfigMap,reason=InvalidCorefile").stdout,
             timeout=10, what="the Warning Event about the bad Corefile")
        assert answers("db.example.test") == [["10.20.30.40"]] * len(coredns_ips)
        assert short(dns_cluster, "kube-dns.kube-system.svc.cluster.local") == ["10.96.0.10"]
    finally:
        patch(original)
    poll(lambda: answers("db.example.test") == [[]] * len(coredns_ips), timeout=10,
         what="the hosts entry to go with the original Corefile")
    assert [p["status"]["containerStatuses"][0]["restartCount"]
            for p in dns_cluster.get("pods", "kube-system", "k8s-app=kube-dns")] == restarts


def test_bad_corefile_is_refused_before_anything_starts(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: bad}\nspec:\n"
                    "  nodes: [{name: n1}]\n  dns:\n    corefile: |\n      .:53 {\n        errors\n"
                    "        cahce 30\n      }\n")
    done = k8semu("plan", str(spec), check=False)
    assert done.returncode == 3
    assert "bad.yaml:10:1: spec.dns.corefile: Corefile:3 - Error during parsing: Unknown directive 'cahce'" in done.stderr
