"""Ingress through real nginx, from a host outside the cluster: fanout by path, virtual hosts,
wildcard hosts, Exact vs Prefix, the default backend, 503 without endpoints, live updates, a
broken Ingress beside good ones, and the forwarded headers."""
from __future__ import annotations

import json

from tests.cluster import k8semu, module_cluster, poll

# the other data planes run in make slow (make test's budget): flannel, calico
OTHER_PLANES = ("topologies/ingress-flannel.yaml", "topologies/ingress-calico.yaml")
ingress_cluster = module_cluster("topologies/ingress.yaml", *OTHER_PLANES, slow=OTHER_PLANES)
NODE = "172.18.0.3"


def echo_app(name: str) -> str:
    """A k8semu/echo pod and its Service in namespace color."""
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: color, labels: {{app: {name}}}}}\n"
            "spec: {containers: [{name: e, image: k8semu/echo}]}\n---\n"
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: color}}\n"
            f"spec: {{selector: {{app: {name}}}, ports: [{{port: 80}}]}}\n---\n")


def ingress(name: str, host: str, service: str, path: str = "/", path_type: str = "Prefix",
            annotations: str = "") -> str:
    """An Ingress in namespace color sending host/path to service:80."""
    meta = f"{{name: {name}, namespace: color{', annotations: {' + annotations + '}' if annotations else ''}}}"
    return (f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {meta}\n"
            f"spec:\n  rules:\n    - host: {host}\n      http:\n        paths:\n"
            f"          - {{path: '{path}', pathType: {path_type}, "
            f"backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}\n")


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
    # a 200 can come from nginx's new workers while the old ones (an older configuration) still
    # take connections; the controller acknowledges a snapshot once they have gone
    ingress_cluster.synced()
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
    poll(lambda: get(ingress_cluster, "foo.bar.com", "/bar/x") == (200, "red"), what="fanout to red")
    poll(lambda: get(ingress_cluster, "bar.foo.com", "/anything") == (200, "red"), what="the second virtual host")
    ingress_cluster.synced()  # nginx's old workers (the older configuration) gone: see the paths test
    assert get(ingress_cluster, "color.contorq.com", "/blue") == (200, "blue")  # the good ones still serve
    assert get(ingress_cluster, "broken.example", "/")[0] == 404
    logs = k8semu("logs", "-n", "ingress-nginx",
                  ingress_cluster.get("pods", "ingress-nginx")[0]["metadata"]["name"]).stdout
    assert "Ingress color/broken: service nothere not found" in logs


def test_no_endpoints_gives_503(ingress_cluster) -> None:
    ingress_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: color}\n"
                          "spec: {selector: {app: none}, ports: [{port: 80}]}\n---\n"
                          + ingress("empty", "empty.example", "empty"))
    poll(lambda: get(ingress_cluster, "empty.example", "/")[0] == 503, what="503 for a backend without endpoints")


def test_forwarded_headers_reach_the_backend(ingress_cluster) -> None:
    ingress_cluster.apply(echo_app("echo") + ingress("echo", "echo.example", "echo"))
    code, body = poll(lambda: (lambda r: r[0] == 200 and r)(get(ingress_cluster, "echo.example", "/hi")),
                      what="the echo backend")
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert headers["host"] == "echo.example" and headers["x-forwarded-proto"] == "http"
    assert "x-forwarded-for" in headers and "x-real-ip" in headers


def make_certificates(directory) -> tuple[str, str, str]:
    """A test CA and a wildcard certificate for *.color.contorq.com signed by it."""
    import subprocess

    def run(*argv: str) -> None:
        subprocess.run(argv, cwd=directory, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=k8semu test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=*.color.contorq.com",
        "-addext", "subjectAltName=DNS:*.color.contorq.com", "-keyout", "tls.key", "-out", "tls.csr")
    (directory / "ext.cnf").write_text("subjectAltName=DNS:*.color.contorq.com\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "tls.crt")
    return str(directory / "ca.crt"), (directory / "tls.crt").read_text(), (directory / "tls.key").read_text()


def test_tls_termination_redirect_and_certificate_mismatch(ingress_cluster, tmp_path) -> None:
    import base64
    ca, crt, key = make_certificates(tmp_path)
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    ingress_cluster.apply(f"""apiVersion: v1
kind: Secret
metadata: {{name: color-tls, namespace: color}}
type: kubernetes.io/tls
data: {{tls.crt: {b64(crt)}, tls.key: {b64(key)}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: not-tls, namespace: color}}
data: {{x: {b64("y")}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: tls-colors, namespace: color}}
spec:
  tls: [{{hosts: [blue.color.contorq.com, red.color.contorq.com], secretName: color-tls}}]
  rules:
    - host: blue.color.contorq.com
      http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: blue, port: {{number: 80}}}}}}}}]}}
    - host: red.color.contorq.com
      http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: red, port: {{number: 80}}}}}}}}]}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: bad-tls, namespace: color}}
spec:
  tls: [{{hosts: [bad.example], secretName: not-tls}}]
  rules:
    - host: bad.example
      http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: blue, port: {{number: 80}}}}}}}}]}}
""")

    def https(host: str, extra: tuple = ()):
        return ingress_cluster.exec("outside", "curl", "-sS", "-m", "3", "--cacert", ca, "--resolve",
                                    f"{host}:30443:{NODE}", *extra, f"https://{host}:30443/")
    poll(lambda: https("blue.color.contorq.com").stdout.strip() == "blue", what="HTTPS for blue")
    ingress_cluster.synced()  # nginx's old workers (the older configuration) gone: see the paths test
    # nginx's old worker may still take a request in the moment of a reload: poll, do not assume
    poll(lambda: https("red.color.contorq.com").stdout.strip() == "red", what="SNI to pick red")
    poll(lambda: ingress_cluster.exec("outside", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                                      "-H", "Host: blue.color.contorq.com", f"http://{NODE}:30080/x").stdout
         == "308 https://blue.color.contorq.com/x", what="the HTTPS redirect")
    mismatch = https("color.other.example")
    assert mismatch.returncode == 60 and "certificate" in mismatch.stderr  # the fake default certificate
    assert get(ingress_cluster, "color.contorq.com", "/blue") == (200, "blue")  # plain HTTP ingresses unaffected
    logs = k8semu("logs", "-n", "ingress-nginx",
                  ingress_cluster.get("pods", "ingress-nginx")[0]["metadata"]["name"]).stdout
    assert "Ingress color/bad-tls: secret not-tls is not a valid kubernetes.io/tls Secret" in logs


def test_the_controller_configmap_changes_the_running_nginx(ingress_cluster) -> None:
    """ingress-nginx's ConfigMap, edited live: ssl-redirect off stops the TLS host's redirect,
    use-forwarded-headers passes the client's X-Forwarded-Proto on, and a key k8semu does not
    emulate is a Warning Event on the ConfigMap."""
    configmap = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller, namespace: ingress-nginx}\n"
                 "data: {allow-snippet-annotations: 'false'%s}\n")
    ingress_cluster.apply(configmap % ", ssl-redirect: 'false', use-forwarded-headers: 'true', enable-brotli: 'true'")
    poll(lambda: get(ingress_cluster, "blue.color.contorq.com", "/") == (200, "blue"),
         what="plain HTTP to the TLS host once ssl-redirect is off")
    ingress_cluster.synced()  # nginx's old workers (the older configuration) gone: see the paths test
    done = ingress_cluster.exec("outside", "curl", "-s", "-m", "3", "-H", "Host: echo.example", "-H",
                                "X-Forwarded-Proto: https", f"http://{NODE}:30080/")
    headers = {k.lower(): v for k, v in json.loads(done.stdout)["headers"].items()}
    assert headers["x-forwarded-proto"] == "https"
    events = k8semu("get", "events", "-n", "ingress-nginx").stdout
    assert "InvalidKey" in events and "enable-brotli: not emulated" in events
    ingress_cluster.apply(configmap % "")
    poll(lambda: get(ingress_cluster, "blue.color.contorq.com", "/")[0] == 308, what="the redirect back")


def test_rewrite_target_and_describe(ingress_cluster) -> None:
    ingress_cluster.apply(echo_app("echo2") + ingress("rewrite", "rw.example", "echo2", "/something(/|$)(.*)",
                                                      "ImplementationSpecific",
                                                      "nginx.ingress.kubernetes.io/rewrite-target: /$2"))
    code, body = poll(lambda: (lambda r: r[0] == 200 and r)(get(ingress_cluster, "rw.example", "/something/new/path")),
                      what="the rewriting ingress")
    assert json.loads(body)["path"] == "/new/path"
    out = k8semu("describe", "ingress", "colors", "-n", "color").stdout
    assert "Ingress Class:    nginx" in out and "color.contorq.com" in out
    assert any(line.strip().startswith("/blue   blue:80 (10.244.") for line in out.splitlines())


def test_controller_behind_a_load_balancer_and_other_classes_left_alone(ingress_cluster) -> None:
    svc = json.loads(k8semu("get", "svc", "ingress-nginx-controller", "-n", "ingress-nginx", "-o", "json").stdout)
    assert svc["spec"]["type"] == "LoadBalancer" and [p["nodePort"] for p in svc["spec"]["ports"]] == [30080, 30443]
    lb = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    done = ingress_cluster.exec("outside", "curl", "-s", "-m", "3", "-H", "Host: color.contorq.com", f"http://{lb}/blue")
    assert done.stdout.strip() == "blue"
    ingress_cluster.apply("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: other, namespace: color}\n"
                          "spec:\n  ingressClassName: traefik\n  rules:\n    - host: other.example\n      http:\n"
                          "        paths: [{path: /, pathType: Prefix, backend: {service: {name: blue, port: {number: 80}}}}]\n")
    assert get(ingress_cluster, "other.example", "/")[0] == 404  # not nginx's class: not served


def test_describe_shows_a_broken_ingress(ingress_cluster) -> None:
    ingress_cluster.apply(ingress("orphan", "orphan.example", "ghost"))
    out = poll(lambda: (lambda t: "service ghost not found" in t and t)(
        k8semu("describe", "ingress", "orphan", "-n", "color").stdout), what="the problem on describe")
    assert "Warning  Sync" in out
