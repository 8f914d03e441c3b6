"""kubernetes-sigs/ingress-controller-conformance, features/path_rules.feature (release 1.19),
transcribed: the Ingress of its Background, applied as written, and each Scenario as a test
named after it. Requests go from a host outside the cluster to a node's ingress NodePort with
the scenario's Host header; "served by" is the echo pod's name, "request path" the path it saw."""
from __future__ import annotations

import json

import pytest

from tests.cluster import Cluster, module_cluster, poll

OTHER_PLANES = ("topologies/ingress-flannel.yaml", "topologies/ingress-calico.yaml")  # make slow (the budget)
ingress_cluster = module_cluster("topologies/ingress.yaml", *OTHER_PLANES, slow=OTHER_PLANES)
NODE = "172.18.0.3"
BACKENDS = ("foo-exact", "foo-prefix", "aaa-slash-bbb-prefix", "aaa-prefix", "aaa-slash-bbb-slash-prefix",
            "foo-slash-exact")


def _path(path: str, kind: str, service: str) -> str:
    return f"          - {{path: {path}, pathType: {kind}, backend: {{service: {{name: {service}, port: {{number: 8080}}}}}}}}\n"


BACKGROUND = (
    "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: path-rules, namespace: conformance}\n"
    "spec:\n  rules:\n"
    "    - host: exact-path-rules\n      http:\n        paths:\n" + _path("/foo", "Exact", "foo-exact")
    + "    - host: prefix-path-rules\n      http:\n        paths:\n" + _path("/foo", "Prefix", "foo-prefix")
    + _path("/aaa/bbb", "Prefix", "aaa-slash-bbb-prefix") + _path("/aaa", "Prefix", "aaa-prefix")
    + "    - host: mixed-path-rules\n      http:\n        paths:\n" + _path("/foo", "Prefix", "foo-prefix")
    + _path("/foo", "Exact", "foo-exact")
    + "    - host: trailing-slash-path-rules\n      http:\n        paths:\n"
    + _path("/aaa/bbb/", "Prefix", "aaa-slash-bbb-slash-prefix") + _path("/foo/", "Exact", "foo-slash-exact"))


@pytest.fixture(scope="module")
def paths(ingress_cluster: Cluster) -> Cluster:
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: conformance}\n"]
    for name in BACKENDS:
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: conformance, labels: {{app: {name}}}}}\n"
                    "spec: {containers: [{name: e, image: k8semu/echo, env: [{name: PORT, value: '8080'}]}]}\n")
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: conformance}}\n"
                    f"spec: {{selector: {{app: {name}}}, ports: [{{port: 8080}}]}}\n")
    ingress_cluster.apply("---\n".join(docs + [BACKGROUND]))
    ingress_cluster.wait_running("conformance")
    # "Then The Ingress status shows the IP address or FQDN where it is exposed", and it serves
    poll(lambda: request(ingress_cluster, "exact-path-rules", "/foo")[0] == 200, what="the ingress to serve")
    # that 200 can come from nginx's new workers while the old ones (an older configuration,
    # without every backend) still take connections: the controller acknowledges a snapshot,
    # and the cluster is in sync, once they have gone
    ingress_cluster.synced()
    return ingress_cluster


def request(cluster: Cluster, host: str, path: str) -> tuple[int, str, str]:
    """(status, served by, request path) of a GET, not following redirects (a 301 is a failure)."""
    done = cluster.exec("outside", "curl", "-s", "-m", "3", "-w", "\n%{http_code}", "-H", f"Host: {host}",
                        f"http://{NODE}:30080{path}")
    body, _, code = done.stdout.rpartition("\n")
    try:
        seen = json.loads(body)
        return int(code or 0), seen["pod"], seen["path"]
    except ValueError:
        return int(code or 0), "", ""


@pytest.mark.parametrize("host, path, status, service, seen", [
    # Scenario: An Ingress with exact path rules should send traffic to the matching backend service
    ("exact-path-rules", "/foo", 200, "foo-exact", "/foo"),
    # ... exact path rules should not match requests with trailing slash
    ("exact-path-rules", "/foo/", 404, "", ""),
    # ... exact path rules should be case sensitive
    ("exact-path-rules", "/FOO", 404, "", ""),
    # ... exact path rules should not match any other label
    ("exact-path-rules", "/bar", 404, "", ""),
    # ... prefix path rules should send traffic to the matching backend service
    ("prefix-path-rules", "/foo", 200, "foo-prefix", "/foo"),
    # ... prefix path rules should ignore the request trailing slash
    ("prefix-path-rules", "/foo/", 200, "foo-prefix", "/foo/"),
    # ... prefix path rules should be case sensitive
    ("prefix-path-rules", "/FOO", 404, "", ""),
    # ... should match multiple labels, match the longest path
    ("prefix-path-rules", "/aaa/bbb", 200, "aaa-slash-bbb-prefix", "/aaa/bbb"),
    # ... match the longest path, and subpaths
    ("prefix-path-rules", "/aaa/bbb/ccc", 200, "aaa-slash-bbb-prefix", "/aaa/bbb/ccc"),
    # ... prefix /aaa matches request /aaa/ccc
    ("prefix-path-rules", "/aaa/ccc", 200, "aaa-prefix", "/aaa/ccc"),
    # ... should match each labels string prefix (prefix /aaa does not match /aaaccc)
    ("prefix-path-rules", "/aaaccc", 404, "", ""),
    # ... mixed path rules: Exact is preferred
    ("mixed-path-rules", "/foo", 200, "foo-exact", "/foo"),
    # ... a trailing slash in a prefix path rule is ignored (prefix /aaa/bbb/ matches /aaa/bbb)
    ("trailing-slash-path-rules", "/aaa/bbb", 200, "aaa-slash-bbb-slash-prefix", "/aaa/bbb"),
    ("trailing-slash-path-rules", "/aaa/bbb/", 200, "aaa-slash-bbb-slash-prefix", "/aaa/bbb/"),
    # ... a trailing slash in an exact path rule does not match requests without it
    ("trailing-slash-path-rules", "/foo", 404, "", ""),
])
def test_path_rules(paths: Cluster, host: str, path: str, status: int, service: str, seen: str) -> None:
    got = request(paths, host, path)
    assert got[0] == status, got
    if status == 200:
        assert got[1:] == (service, seen)
