"""Ingress through real nginx, from a host outside the cluster: fanout by path, virtual hosts,
wildcard hosts, Exact vs Prefix, the default backend, 503 without endpoints, live updates, a
broken Ingress beside good ones, and the forwarded headers."""
from __future__ import annotations

import json

from tests.cluster import k8semu, module_cluster, poll

ingress_cluster = module_cluster("topologies/ingress.yaml")
NODE = "172.18.0.3"


def get(cluster, host: str, path: str, node: str = NODE) -> tuple[int, str]:
    done = cluster.exec("outside", "curl", "-s", "-m", "3", "-w", "\n%{http_code}", "-H", f"Host: {host}",
                        f"http://{node}:30080{path}")
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body.strip()


def test_get_ingress(ingress_cluster) -> None:
    row = k8semu("get", "ingress", "-n", "color").stdout.splitlines()[1].split()
    assert row[:3] == ["colors", "nginx", "color.contorq.com,*.wild.contorq.com"] and row[4] == "80"


def test_paths_prefix_by_element_and_exact(ingress_cluster) -> None:
    poll(lambda: get(ingress_cluster, "color.contorq.com", "/blue") == (200, "blue"), what="the ingress to serve")
    assert get(ingress_cluster, "color.contorq.com", "/blue/shade") == (200, "blue")
    assert get(ingress_cluster, "color.contorq.com", "/bluex")[0] == 404
    assert get(ingress_cluster, "color.contorq.com", "/red") == (200, "red")
    assert get(ingress_cluster, "color.contorq.com", "/red/x")[0] == 404  # Exact
    assert get(ingress_cluster, "other.example", "/blue") == (404, "default backend - 404")


def test_every_node_and_wildcard_host(ingress_cluster) -> None:
    for node in ("172.18.0.2", "172.18.0.3", "172.18.0.4"):
        assert get(ingress_cluster, "color.contorq.com", "/blue", node) == (200, "blue")
    assert get(ingress_cluster, "x.wild.contorq.com", "/") == (200, "red")
    assert get(ingress_cluster, "a.b.wild.contorq.com", "/")[0] == 404  # one label only


def test_fanout_virtual_hosts_live_update_and_broken_neighbour(ingress_cluster) -> None:
    ingress_cluster.apply("""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fanout, namespace: color}
spec:
  rules:
    - host: foo.bar.com
      http:
        paths:
          - {path: /foo, pathType: Prefix, backend: {service: {name: blue, port: {number: 80}}}}
          - {path: /bar, pathType: Prefix, backend: {service: {name: red, port: {number: 80}}}}
    - host: bar.foo.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: red, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: broken, namespace: color}
spec:
  rules:
    - host: broken.example
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: nothere, port: {number: 80}}}}
""")
    poll(lambda: get(ingress_cluster, "foo.bar.com", "/foo") == (200, "blue"), what="the new Ingress (default class)")
    assert get(ingress_cluster, "foo.bar.com", "/bar/x") == (200, "red")
    assert get(ingress_cluster, "bar.foo.com", "/anything") == (200, "red")
    assert get(ingress_cluster, "color.contorq.com", "/blue") == (200, "blue")  # the good ones still serve
    assert get(ingress_cluster, "broken.example", "/")[0] == 404
    logs = k8semu("logs", "-n", "ingress-nginx",
                  ingress_cluster.get("pods", "ingress-nginx")[0]["metadata"]["name"]).stdout
    assert "Ingress color/broken: service nothere not found" in logs


def test_no_endpoints_gives_503(ingress_cluster) -> None:
    ingress_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: color}\n"
                          "spec: {selector: {app: none}, ports: [{port: 80}]}\n---\n"
                          "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: empty, namespace: color}\n"
                          "spec:\n  rules:\n    - host: empty.example\n      http:\n        paths:\n"
                          "          - {path: /, pathType: Prefix, backend: {service: {name: empty, port: {number: 80}}}}\n")
    poll(lambda: get(ingress_cluster, "empty.example", "/")[0] == 503, what="503 for a backend without endpoints")


def test_forwarded_headers_reach_the_backend(ingress_cluster) -> None:
    ingress_cluster.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: echo, namespace: color, labels: {app: echo}}\n"
                          "spec: {containers: [{name: e, image: k8semu/echo}]}\n---\n"
                          "apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: color}\n"
                          "spec: {selector: {app: echo}, ports: [{port: 80}]}\n---\n"
                          "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: echo, namespace: color}\n"
                          "spec:\n  rules:\n    - host: echo.example\n      http:\n        paths:\n"
                          "          - {path: /, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}\n")
    code, body = poll(lambda: (lambda r: r[0] == 200 and r)(get(ingress_cluster, "echo.example", "/hi")),
                      what="the echo backend")
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert headers["host"] == "echo.example" and headers["x-forwarded-proto"] == "http"
    assert "x-forwarded-for" in headers and "x-real-ip" in headers
