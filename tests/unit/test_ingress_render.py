"""The nginx configuration rendered from Ingress objects, without nginx (pure)."""
from __future__ import annotations

from emulator.ingress.render import render


def svc(name: str, port: int, endpoints: list[str], port_name: str = "") -> dict:
    return {"name": name, "namespace": "default", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"ip": ip, "ready": True, "ports": [{"name": port_name, "port": 8080, "protocol": "TCP"}]}
                          for ip in endpoints]}


def ing(name: str, rules: list, default=None) -> dict:
    return {"name": name, "namespace": "default", "rules": rules, "default_backend": default}


def path(p: str, kind: str, service: str, port) -> dict:
    return {"path": p, "path_type": kind, "backend": {"service": service, "port": port}}


SNAP = {"services": [svc("s1", 4200, ["10.244.1.5", "10.244.2.5"]), svc("s2", 8080, []),
                     svc("s3", 80, ["10.244.1.9"], "http")],
        "ingresses": [ing("fanout", [
            {"host": "foo.bar.com", "paths": [path("/foo", "Prefix", "s1", 4200), path("/bar", "Exact", "s2", 8080)]},
            {"host": "*.example.com", "paths": [path("/", "Prefix", "s3", "http")]}]),
                      ing("broken", [{"host": "b.com", "paths": [path("/", "Prefix", "gone", 80)]}])]}


def test_upstreams_are_endpoint_ips_not_cluster_ips() -> None:
    conf = render(SNAP).conf
    assert "upstream default_s1_4200 { server 10.244.1.5:8080; server 10.244.2.5:8080; keepalive 320; }" in conf


def test_prefix_by_path_element_exact_and_503() -> None:
    conf = render(SNAP).conf
    assert "location = /foo { proxy_pass http://default_s1_4200; }" in conf
    assert "location /foo/ { proxy_pass http://default_s1_4200; }" in conf
    assert "location = /bar { return 503; }" in conf  # no endpoints


def test_wildcard_host_matches_one_label_and_default_backend_is_404() -> None:
    conf = render(SNAP).conf
    assert r"server_name ~^[^.]+\.example\.com$;" in conf
    assert "listen 80 default_server; server_name _;" in conf and 'return 404 "default backend - 404\\n"' in conf


def test_broken_ingress_is_reported_and_left_out() -> None:
    out = render(SNAP)
    assert out.problems == ["Ingress default/broken: service gone not found; the Ingress is not served"]
    assert "b.com" not in out.conf and "foo.bar.com" in out.conf


def test_spec_default_backend() -> None:
    snap = {"services": SNAP["services"], "ingresses": [ing("d", [], default={"service": "s1", "port": 4200})]}
    assert "location / { proxy_pass http://default_s1_4200; }" in render(snap).conf


def test_tls_servers_redirect_and_bad_secrets() -> None:
    pem = {"tls.crt": "-----BEGIN CERTIFICATE-----\nx\n", "tls.key": "-----BEGIN PRIVATE KEY-----\ny\n"}
    good = ing("tls", [{"host": "a.example.com", "paths": [path("/", "Prefix", "s1", 4200)]}])
    good["tls"] = [{"hosts": ["a.example.com"], "secret": "cert", "pem": pem}]
    bad = ing("bad", [{"host": "b.example.com", "paths": [path("/", "Prefix", "s1", 4200)]}])
    bad["tls"] = [{"hosts": ["b.example.com"], "secret": "nope", "pem": None}]
    out = render({"services": SNAP["services"], "ingresses": [good, bad]})
    assert "listen 443 ssl; server_name a.example.com; ssl_certificate {dir}/certs/default_cert.crt;" in out.conf
    assert "location / { return 308 https://$host$request_uri; }" in out.conf
    assert out.files["certs/default_cert.crt"] == pem["tls.crt"]
    assert out.problems == ["Ingress default/bad: secret nope is not a valid kubernetes.io/tls Secret; "
                            "the Ingress is not served"]
    good["annotations"] = {"nginx.ingress.kubernetes.io/ssl-redirect": "false"}
    assert "return 308" not in render({"services": SNAP["services"], "ingresses": [good]}).conf


def test_rewrite_target_use_regex_and_backend_protocol() -> None:
    rewritten = ing("rw", [{"host": "r.com", "paths": [path("/something(/|$)(.*)", "ImplementationSpecific", "s1", 4200)]}])
    rewritten["annotations"] = {"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}
    secure = ing("sec", [{"host": "s.com", "paths": [path("/", "Prefix", "s1", 4200)]}])
    secure["annotations"] = {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}
    conf = render({"services": SNAP["services"], "ingresses": [rewritten, secure]}).conf
    assert ('location ~* "^/something(/|$)(.*)" { rewrite "(?i)^/something(/|$)(.*)" /$2 break; '
            "proxy_pass http://default_s1_4200; }") in conf
    assert "location / { proxy_pass https://default_s1_4200; }" in conf
