"""The Kubernetes DNS specification (kubernetes/dns docs/specification.md, schema 1.1.0) and the
e2e tests of test/e2e/network/dns.go, transcribed where k8semu failed them: each test is named
after the section or the e2e test it follows. The rest of both are covered by
tests/integration/test_dns.py (docs/conformance.md maps every one)."""
from __future__ import annotations

import re

import pytest

from tests.cluster import Cluster, k8semu, module_cluster, poll

OTHER_PLANES = ("topologies/dns-flannel.yaml", "topologies/dns-calico.yaml")  # make slow (the budget)
dns_cluster = module_cluster("topologies/dns.yaml", *OTHER_PLANES, slow=OTHER_PLANES)

APPS = """apiVersion: v1
kind: Namespace
metadata: {name: spec}
---
apiVersion: v1
kind: Service
metadata: {name: empty-headless, namespace: spec}
spec: {clusterIP: None, selector: {app: nobody}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: unready, namespace: spec}
spec: {clusterIP: None, selector: {app: unready}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: unready-published, namespace: spec}
spec: {clusterIP: None, publishNotReadyAddresses: true, selector: {app: unready}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: unready-cip, namespace: spec}
spec: {publishNotReadyAddresses: true, selector: {app: unready}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: never-ready, namespace: spec, labels: {app: unready}}
spec:
  containers:
    - name: e
      image: k8semu/echo
      env: [{name: PORT, value: "8080"}]
      readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: dns-test-service, namespace: spec}
spec: {clusterIP: None, selector: {app: querier}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: dns-querier-1, namespace: spec, labels: {app: querier}}
spec:
  hostname: dns-querier-1
  subdomain: dns-test-service
  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.remote, bar.remote]}]
  containers: [{name: c, image: busybox, command: [sleep, infinity]}]
"""


@pytest.fixture(scope="module")
def spec(dns_cluster: Cluster) -> Cluster:
    dns_cluster.apply(APPS)
    poll(lambda: all(p["status"].get("phase") == "Running" for p in dns_cluster.get("pods", "spec"))
         and len(dns_cluster.get("pods", "spec")) == 2, what="the pods to run")
    poll(lambda: status(dig(dns_cluster, "dns-querier-1.dns-test-service.spec.svc.cluster.local")) == "NOERROR",
         what="the records to be served")
    dns_cluster.synced()
    return dns_cluster


def dig(cluster: Cluster, *args: str) -> str:
    return cluster.exec("client", "dig", "+time=2", "+tries=2", *args).stdout


def status(out: str) -> str:
    return re.search(r"status: (\w+)", out).group(1)


def answers(out: str) -> list[str]:
    section = out.split(";; ANSWER SECTION:\n", 1)
    return sorted(line.split()[-1] for line in section[1].split("\n\n")[0].splitlines()) if len(section) > 1 else []


def test_spec_2_4_1_a_headless_service_without_ready_endpoints_is_nxdomain(spec: Cluster) -> None:
    assert status(dig(spec, "empty-headless.spec.svc.cluster.local")) == "NXDOMAIN"
    assert status(dig(spec, "unready.spec.svc.cluster.local")) == "NXDOMAIN"
    assert status(dig(spec, "SRV", "_http._tcp.unready.spec.svc.cluster.local")) == "NXDOMAIN"


def test_spec_publish_not_ready_addresses_puts_unready_pods_in_dns(spec: Cluster) -> None:
    ip = spec.pod("never-ready", "spec")["status"]["podIP"]
    out = dig(spec, "unready-published.spec.svc.cluster.local")
    assert status(out) == "NOERROR" and answers(out) == [ip]


def test_service_publish_not_ready_addresses_reaches_an_unready_pod_through_the_cluster_ip(spec: Cluster) -> None:
    """The proxy side: the ClusterIP sends to the not-ready pod (e2e: "should create endpoints
    for unready pods")."""
    out = spec.exec("client", "curl", "-s", "-m", "3", "http://unready-cip.spec/").stdout
    assert '"pod": "never-ready"' in out


def test_coredns_a_namespace_under_pod_is_nodata(spec: Cluster) -> None:
    out = dig(spec, "spec.pod.cluster.local")
    assert status(out) == "NOERROR" and answers(out) == []
    assert status(dig(spec, "no-such-namespace.pod.cluster.local")) == "NXDOMAIN"


def test_e2e_should_provide_dns_for_pods_for_hostname_and_subdomain(spec: Cluster) -> None:
    ip = spec.pod("dns-querier-1", "spec")["status"]["podIP"]
    assert answers(dig(spec, "dns-querier-1.dns-test-service.spec.svc.cluster.local")) == [ip]


def test_e2e_should_provide_etc_hosts_entries_for_the_cluster(spec: Cluster) -> None:
    ip = spec.pod("dns-querier-1", "spec")["status"]["podIP"]
    fqdn = "dns-querier-1.dns-test-service.spec.svc.cluster.local"
    for name in (fqdn, "dns-querier-1"):
        out = spec.exec("dns-querier-1", "getent", "hosts", name, namespace="spec").stdout.split()
        assert out[:1] == [ip], (name, out)
    assert spec.exec("dns-querier-1", "getent", "hosts", "bar.remote", namespace="spec").stdout.split()[:1] == ["10.1.2.3"]
    assert spec.exec("dns-querier-1", "hostname", namespace="spec").stdout.strip() == "dns-querier-1"


def test_e2e_should_work_with_more_than_6_dns_search_paths_and_longer_than_256_characters(spec: Cluster) -> None:
    """dns.go: a pod whose dnsConfig adds six long search domains (the search line is then 9
    domains and over 256 characters, past the old glibc limits; the API allows 32 and 2,048)
    still resolves cluster names through the search list, and its resolv.conf keeps them all."""
    extra = [f"{str(i) * 50}.example.com" for i in range(1, 7)]
    spec.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: long-search, namespace: spec}\n"
               f"spec:\n  dnsConfig: {{searches: [{', '.join(extra)}]}}\n"
               "  containers: [{name: c, image: busybox, command: [sleep, infinity]}]\n")
    try:
        poll(lambda: spec.pod("long-search", "spec")["status"].get("phase") == "Running", what="long-search to run")
        resolv = spec.exec("long-search", "cat", "/etc/resolv.conf", namespace="spec", check=True).stdout
        search = next(line for line in resolv.splitlines() if line.startswith("search "))
        assert search.split()[1:] == ["spec.svc.cluster.local", "svc.cluster.local", "cluster.local", *extra]
        assert len(search) > 256
        for name in ("kubernetes.default", "kubernetes.default.svc", "dns-test-service"):
            got = spec.exec("long-search", "getent", "hosts", name, namespace="spec").stdout.split()
            assert got, name
        assert spec.exec("long-search", "getent", "hosts", "kubernetes.default", namespace="spec").stdout.split()[0] \
            == "10.96.0.1"
    finally:
        k8semu("--cluster", spec.name, "delete", "pod", "long-search", "-n", "spec", "--wait=false", check=False)
