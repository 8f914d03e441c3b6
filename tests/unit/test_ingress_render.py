"""The nginx configuration rendered from Ingress objects, without nginx (pure): a golden file
for a fixed snapshot, the rules it encodes, and hostile values that must never become syntax."""
from __future__ import annotations

import copy

import pytest

from emulator.ingress import nginxconf
from emulator.ingress.render import render


def svc(name: str, port: int, endpoints: list[str], port_name: str = "") -> dict:
    return {"name": name, "namespace": "default", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"ip": ip, "ready": True, "ports": [{"name": port_name, "port": 8080, "protocol": "TCP"}]}
                          for ip in endpoints]}


def ing(name: str, rules: list, default=None, annotations=None) -> dict:
    return {"name": name, "namespace": "default", "rules": rules, "default_backend": default,
            "annotations": annotations or {}}


def path(p: str, kind: str, service: str, port) -> dict:
    return {"path": p, "path_type": kind, "backend": {"service": service, "port": port}}


PEM = {"tls.crt": "-----BEGIN CERTIFICATE-----\nx\n", "tls.key": "-----BEGIN PRIVATE KEY-----\ny\n"}
SNAP = {"services": [svc("s1", 4200, ["10.244.1.5", "10.244.2.5"]), svc("s2", 8080, []),
                     svc("s3", 80, ["10.244.1.9"], "http")],
        "ingresses": [ing("fanout", [
            {"host": "foo.bar.com", "paths": [path("/foo", "Prefix", "s1", 4200), path("/bar", "Exact", "s2", 8080)]},
            {"host": "*.example.com", "paths": [path("/", "Prefix", "s3", "http")]}]),
                      ing("broken", [{"host": "b.com", "paths": [path("/", "Prefix", "gone", 80)]}])]}


def full_snapshot() -> dict:
    snap = copy.deepcopy(SNAP)
    tls = ing("tls", [{"host": "a.example.com", "paths": [path("/", "Prefix", "s1", 4200)]}])
    tls["tls"] = [{"hosts": ["a.example.com"], "secret": "cert", "pem": PEM}]
    rewrite = ing("rw", [{"host": "r.com", "paths": [path("/something(/|$)(.*)", "ImplementationSpecific", "s1", 4200)]}],
                  annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/$2"})
    secure = ing("sec", [{"host": "s.com", "paths": [path("/", "Prefix", "s1", 4200)]}],
                 annotations={"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"})
    snap["ingresses"] += [tls, rewrite, secure]
    return snap


def lines(conf: str) -> list[str]:
    return [line.strip() for line in conf.splitlines()]


def location(conf: str, head: str, server: str = "") -> list[str]:
    """The directives inside the first ``location <head> {`` block (of the first server block
    whose server_name is ``server``, when given)."""
    body = lines(conf)
    first = body.index(f"server_name {server};") if server else 0
    start = body.index(f"location {head} {{", first)
    return body[start + 1:body.index("}", start)]


def test_the_rendering_matches_its_golden_file(golden) -> None:
    golden("configs/nginx-ingress.conf", render(full_snapshot(), "/run/k8semu/pod/controller").conf)


def test_upstreams_are_endpoint_ips_not_cluster_ips() -> None:
    conf = lines(render(SNAP).conf)
    start = conf.index("upstream default_s1_4200 {")
    assert conf[start + 1:start + 4] == ["server 10.244.1.5:8080;", "server 10.244.2.5:8080;", "keepalive 320;"]


def test_prefix_by_path_element_exact_and_503() -> None:
    conf = render(SNAP).conf
    assert location(conf, "= /foo") == ["proxy_pass http://default_s1_4200;"]
    assert location(conf, "/foo/") == ["proxy_pass http://default_s1_4200;"]
    assert location(conf, "= /bar") == ["return 503;"]  # no endpoints


def test_wildcard_host_matches_one_label_and_default_backend_is_404() -> None:
    conf = lines(render(SNAP).conf)
    assert 'server_name "~^[^.]+\\\\.example\\\\.com$";' in conf  # nginx reads ~^[^.]+\.example\.com$
    assert "listen 80 default_server;" in conf and 'return 404 "default backend - 404\\n";' in conf


def test_broken_ingress_is_reported_and_left_out() -> None:
    out = render(SNAP)
    assert out.problems == ["Ingress default/broken: service gone not found; the Ingress is not served"]
    assert "b.com" not in out.conf and "foo.bar.com" in out.conf


def test_spec_default_backend() -> None:
    snap = {"services": SNAP["services"], "ingresses": [ing("d", [], default={"service": "s1", "port": 4200})]}
    assert location(render(snap).conf, "/") == ["proxy_pass http://default_s1_4200;"]


def test_tls_servers_redirect_and_bad_secrets() -> None:
    good = ing("tls", [{"host": "a.example.com", "paths": [path("/", "Prefix", "s1", 4200)]}])
    good["tls"] = [{"hosts": ["a.example.com"], "secret": "cert", "pem": PEM}]
    bad = ing("bad", [{"host": "b.example.com", "paths": [path("/", "Prefix", "s1", 4200)]}])
    bad["tls"] = [{"hosts": ["b.example.com"], "secret": "nope", "pem": None}]
    out = render({"services": SNAP["services"], "ingresses": [good, bad]}, "/d")
    conf = lines(out.conf)
    assert "ssl_certificate /d/certs/default_cert.crt;" in conf and "listen 443 ssl;" in conf
    assert location(out.conf, "/", "a.example.com") == ["return 308 https://$host$request_uri;"]
    assert out.files["certs/default_cert.crt"] == PEM["tls.crt"]
    assert out.problems == ["Ingress default/bad: secret nope is not a valid kubernetes.io/tls Secret; "
                            "the Ingress is not served"]
    good["annotations"] = {"nginx.ingress.kubernetes.io/ssl-redirect": "false"}
    assert "return 308" not in render({"services": SNAP["services"], "ingresses": [good]}).conf


def test_rewrite_target_use_regex_and_backend_protocol() -> None:
    conf = render(full_snapshot()).conf
    expected = ['rewrite "(?i)^/something(/|$)(.*)" "/$2" break;', "proxy_pass http://default_s1_4200;"]
    assert location(conf, '~* "^/something(/|$)(.*)"') == expected
    assert "proxy_pass https://default_s1_4200;" in lines(conf)


HOSTILE_PATHS = [
    "/leak { alias /etc/; autoindex on; } location /z",
    "/x; } server { listen 8080; root /; } location /y {",
    '/a" { return 200 "pwned',
    "/a\nreturn 200 x;",
    "/a\n",
    "/a#",
    "/a b",
    "/a\x00b",
    "/a;b",
    "/a'b",
]


@pytest.mark.parametrize("value", HOSTILE_PATHS)
@pytest.mark.parametrize("kind", ["Exact", "Prefix", "ImplementationSpecific"])
def test_a_hostile_path_is_refused_and_the_other_ingresses_are_served(value: str, kind: str) -> None:
    snap = copy.deepcopy(SNAP)
    snap["ingresses"].append(ing("evil", [{"host": "e.com", "paths": [path(value, kind, "s1", 4200)]}]))
    out = render(snap)
    assert any(p.startswith("Ingress default/evil: invalid path") for p in out.problems), out.problems
    assert "server_name e.com;" not in out.conf and "alias" not in out.conf and "pwned" not in out.conf
    assert "location = /foo {" in out.conf


@pytest.mark.parametrize("value", ["/$2; } location /x { alias /etc/", '/"', "/a b", "/\n", "/a;b", "/{x}"])
def test_a_hostile_rewrite_target_is_refused(value: str) -> None:
    snap = copy.deepcopy(SNAP)
    snap["ingresses"].append(ing("rw", [{"host": "r.com", "paths": [path("/a", "Prefix", "s1", 4200)]}],
                                 annotations={"nginx.ingress.kubernetes.io/rewrite-target": value}))
    out = render(snap)
    assert any("Ingress default/rw: annotation rewrite-target" in p for p in out.problems), out.problems
    assert "server_name r.com;" not in out.conf


@pytest.mark.parametrize("value", ["e.com; root /", "e.com{", "*.*.e.com", "E.COM", "e.com\n"])
def test_a_hostile_host_is_refused(value: str) -> None:
    snap = copy.deepcopy(SNAP)
    snap["ingresses"].append(ing("h", [{"host": value, "paths": [path("/", "Prefix", "s1", 4200)]}]))
    out = render(snap)
    assert "Ingress default/h: invalid host" in out.problems[-1]


@pytest.mark.parametrize("value", ['a"b', "a;b", "a b", "a{b}", "a\\b", "$x", "#c", "'q'"])
def test_the_builder_quotes_every_unsafe_argument(value: str) -> None:
    text = nginxconf.render([nginxconf.Directive("server_name", (value,))])
    assert text.startswith('server_name "') and text.endswith('";\n')
    body = text[len('server_name "'):-len('";\n')]
    unquoted = body.replace('\\\\', "").replace('\\"', "")
    assert '"' not in unquoted  # every quote inside is escaped: the value stays one argument


@pytest.mark.parametrize("value", ["", "a\nb", "a\x00", "a\rb", "a\x1bb", "a\x7f"])
def test_the_builder_refuses_control_characters(value: str) -> None:
    with pytest.raises(nginxconf.NginxConfError):
        nginxconf.token(value)


@pytest.mark.parametrize("value", ["/a\\", "/$host", "/(.*)$"])
def test_a_literal_backslash_or_dollar_in_an_implementation_specific_path_is_quoted(value: str) -> None:
    snap = copy.deepcopy(SNAP)
    snap["ingresses"].append(ing("lit", [{"host": "l.com", "paths": [path(value, "ImplementationSpecific", "s1", 4200)]}]))
    out = render(snap)
    assert not out.problems[1:], out.problems
    quoted = '"' + value.replace("\\", "\\\\") + '"'
    assert f"location {quoted} {{" in out.conf
    for kind in ("Exact", "Prefix"):  # ingress-nginx's strict path validation refuses them there
        snap["ingresses"][-1]["rules"][0]["paths"][0]["path_type"] = kind
        assert "Ingress default/lit: invalid path" in render(snap).problems[-1]


def test_the_controller_configmap_sets_nginx_as_ingress_nginx_reads_it() -> None:
    """ssl-redirect is the default an Ingress's annotation overrides; sizes and timeouts become
    their directives; use-forwarded-headers trusts the client's X-Forwarded-* (real_ip)."""
    tls = ing("tls", [{"host": "a.example.com", "paths": [path("/", "Prefix", "s1", 4200)]}])
    tls["tls"] = [{"hosts": ["a.example.com"], "secret": "cert", "pem": PEM}]
    config = {"ssl-redirect": "false", "proxy-body-size": "8m", "proxy-read-timeout": "120",
              "use-forwarded-headers": "true", "server-tokens": "true", "allow-snippet-annotations": "false"}
    out = render({"services": SNAP["services"], "ingresses": [tls], "controller_config": config}, "/d")
    conf = lines(out.conf)
    assert out.problems == []
    assert "return 308" not in out.conf  # the ConfigMap turned the redirect off for every Ingress
    assert {"client_max_body_size 8m;", "proxy_read_timeout 120s;", "proxy_connect_timeout 5s;",
            "server_tokens on;", "real_ip_header X-Forwarded-For;", "default $http_x_forwarded_proto;",
            '"" $scheme;'} <= set(conf)
    tls["annotations"] = {"nginx.ingress.kubernetes.io/ssl-redirect": "true"}  # the annotation wins
    assert "return 308" in render({"services": SNAP["services"], "ingresses": [tls], "controller_config": config}).conf
    plain = lines(render({"services": SNAP["services"], "ingresses": [tls]}).conf)
    assert "real_ip_header X-Forwarded-For;" not in plain and "default $scheme;" in plain and "server_tokens off;" in plain


@pytest.mark.parametrize("key,value", [("proxy-body-size", "1m; include /etc/shadow"), ("proxy-body-size", "1 m"),
                                       ("proxy-read-timeout", "60s"), ("proxy-send-timeout", "-1"),
                                       ("ssl-redirect", "yes"), ("server-tokens", "on\n")])
def test_a_bad_configmap_value_is_reported_and_the_default_kept(key: str, value: str) -> None:
    out = render({"services": SNAP["services"], "ingresses": [], "controller_config": {key: value}})
    assert out.problems == [f"ConfigMap ingress-nginx/ingress-nginx-controller: {key}: invalid value {value!r}; "
                            "the default is kept"]
    assert out.conf == render({"services": SNAP["services"], "ingresses": []}).conf


def test_a_configmap_key_k8semu_does_not_emulate_is_reported_and_the_rest_applied() -> None:
    out = render({"services": [], "ingresses": [], "controller_config": {"enable-brotli": "true",
                                                                          "proxy-body-size": "2m"}})
    assert out.problems == ["ConfigMap ingress-nginx/ingress-nginx-controller: enable-brotli: not emulated by "
                            "k8semu's ingress-nginx; ignored"]
    assert "client_max_body_size 2m;" in lines(out.conf)
