"""Ingress objects -> nginx.conf, the way ingress-nginx does it (pure).

- Upstreams are the endpoints' pod IPs and ports, not the ClusterIP; a backend without ready
  endpoints answers 503.
- Hosts: exact, or ``*.example.com`` matching exactly one label (an nginx regex server_name);
  several Ingresses naming one host merge into one server.
- Paths: Exact is ``location = /p``; Prefix matches by path element (``/foo`` matches ``/foo``
  and ``/foo/bar``, not ``/foobar``): ``location = /foo`` plus ``location /foo/``;
  ImplementationSpecific is nginx's own prefix match. nginx picks exact, then the longest prefix.
- No rule matches: the ``defaultBackend`` of an Ingress, else the built-in 404.
- Requests carry X-Forwarded-For, X-Forwarded-Proto, X-Real-IP and the original Host.
An Ingress whose backend Service does not exist is reported and left out; the others are served.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Rendered:
    conf: str
    problems: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> content (certificates)


def _server_name(host: str) -> str:
    if host.startswith("*."):
        return "~^[^.]+" + re.escape(host[1:]) + "$"
    return host or "_"


def _upstream_name(ns: str, svc: str, port) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{ns}-{svc}-{port}")


def _resolve(snapshot: dict, ns: str, backend: dict) -> tuple[str, list[str]] | None:
    """(upstream name, ["ip:port", ...]) for a backend, or None if the Service does not exist."""
    svc = next((s for s in snapshot["services"] if s["namespace"] == ns and s["name"] == backend["service"]), None)
    if svc is None:
        return None
    port = next((p for p in svc["ports"] if p["port"] == backend["port"] or p["name"] == backend["port"]), None)
    if port is None:
        return None
    servers = sorted({f"{e['ip']}:{p['port']}" for e in svc["endpoints"] if e["ready"]
                      for p in e["ports"] if p["name"] == port["name"]})
    return _upstream_name(ns, svc["name"], port["port"]), servers


def _locations(path: str, path_type: str) -> list[str]:
    if path_type == "Exact":
        return [f"= {path}"]
    if path_type == "Prefix":
        if path == "/":
            return ["/"]
        base = path.rstrip("/")
        return [f"= {base}", f"{base}/"]
    return [path]


ANN = "nginx.ingress.kubernetes.io/"


def _path_options(ing: dict) -> tuple[bool, str, str]:
    """(paths are regexes, rewrite target, backend scheme) from ingress-nginx's annotations."""
    ann = ing.get("annotations", {}) or {}
    rewrite = ann.get(ANN + "rewrite-target", "")
    regex = ann.get(ANN + "use-regex", "false") == "true" or bool(rewrite)
    scheme = "https" if ann.get(ANN + "backend-protocol", "HTTP").upper() == "HTTPS" else "http"
    return regex, rewrite, scheme


def _valid_pem(pem: dict | None) -> bool:
    return bool(pem) and "BEGIN CERTIFICATE" in pem.get("tls.crt", "") and "PRIVATE KEY" in pem.get("tls.key", "")


def render(snapshot: dict, listen: int = 80, tls_listen: int = 443) -> Rendered:
    """The whole nginx.conf for the ingresses of class nginx (or without a class when nginx is
    the default class)."""
    out = Rendered("")
    upstreams: dict[str, list[str]] = {}
    servers: dict[str, dict[str, tuple]] = {}  # server_name -> location -> (upstream, rewrite, scheme)
    default_backend = None
    tls_hosts: dict[str, tuple[str, bool]] = {}  # server_name -> (certificate stem, redirect HTTP)
    for ing in snapshot["ingresses"]:
        where = f"{ing['namespace']}/{ing['name']}"
        missing = []
        resolved = []
        for rule in ing["rules"]:
            for p in rule["paths"]:
                target = _resolve(snapshot, ing["namespace"], p["backend"])
                if target is None:
                    missing.append(p["backend"]["service"])
                resolved.append((rule["host"], p, target))
        if ing.get("default_backend"):
            target = _resolve(snapshot, ing["namespace"], ing["default_backend"])
            if target is None:
                missing.append(ing["default_backend"]["service"])
            else:
                default_backend = default_backend or target
                upstreams[target[0]] = target[1]
        if missing:
            out.problems.append(f"Ingress {where}: service {', '.join(sorted(set(missing)))} not found; "
                                "the Ingress is not served")
            continue
        bad = [t["secret"] for t in ing.get("tls", []) if not _valid_pem(t.get("pem"))]
        if bad:
            out.problems.append(f"Ingress {where}: secret {', '.join(bad)} is not a valid kubernetes.io/tls "
                                "Secret; the Ingress is not served")
            continue
        redirect = ing.get("annotations", {}).get("nginx.ingress.kubernetes.io/ssl-redirect", "true") != "false"
        for t in ing.get("tls", []):
            stem = f"certs/{ing['namespace']}_{t['secret']}"
            out.files[stem + ".crt"], out.files[stem + ".key"] = t["pem"]["tls.crt"], t["pem"]["tls.key"]
            for host in t["hosts"]:
                tls_hosts.setdefault(_server_name(host), (stem, redirect))
        regex, rewrite, scheme = _path_options(ing)
        for host, p, target in resolved:
            upstreams[target[0]] = target[1]
            locations = servers.setdefault(_server_name(host), {})
            if regex:  # ingress-nginx: case-insensitive regex locations, rewritten if asked
                pattern = "^" + p["path"]
                todo = f'rewrite "(?i){pattern}" {rewrite} break; ' if rewrite else ""
                locations.setdefault(f'~* "{pattern}"', (target[0], todo, scheme))
                continue
            for loc in _locations(p["path"], p["path_type"]):
                locations.setdefault(loc, (target[0], "", scheme))
    # one worker: on a 2-core machine shared with the client and the backends, more workers only contend
    lines = ["daemon off;", "user root;", "worker_processes 1;", "pid {dir}/nginx.pid;", "error_log stderr notice;",
             "events { worker_connections 1024; }", "http {",
             '    log_format ingress \'$remote_addr - [$time_local] "$request" $status $host -> $upstream_addr\';',
             "    access_log /dev/stdout ingress;",
             "    client_body_temp_path {dir}/client_body; proxy_temp_path {dir}/proxy;",
             "    fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;",
             "    proxy_set_header Host $host;",
             "    proxy_set_header X-Real-IP $remote_addr;",
             "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
             "    proxy_set_header X-Forwarded-Proto $scheme;",
             "    proxy_http_version 1.1;",
             '    proxy_set_header Connection "";  # keep upstream connections alive, as ingress-nginx does']
    for name, members in sorted(upstreams.items()):
        if members:
            lines.append(f"    upstream {name} {{ " + " ".join(f"server {m};" for m in members) + " keepalive 320; }")

    def location(loc: str, target: tuple) -> str:
        upstream, extra, scheme = target
        if upstreams.get(upstream):
            return f"        location {loc} {{ {extra}proxy_pass {scheme}://{upstream}; }}"
        return f"        location {loc} {{ return 503; }}"

    default = (location("/", (default_backend[0], "", "http")) if default_backend else
               "        location / { default_type text/plain; return 404 \"default backend - 404\\n\"; }")
    servers.setdefault("_", {})
    for name, locations in sorted(servers.items(), key=lambda kv: kv[0] != "_"):
        blocks = [(f"listen {listen} default_server; server_name _;" if name == "_" else
                   f"listen {listen}; server_name {name};", name in tls_hosts and tls_hosts[name][1])]
        if name == "_":  # the controller's fake certificate answers HTTPS for unknown names
            blocks.append((f"listen {tls_listen} ssl default_server; server_name _; "
                           "ssl_certificate {dir}/certs/default.crt; ssl_certificate_key {dir}/certs/default.key;", False))
        elif name in tls_hosts:
            stem = tls_hosts[name][0]
            blocks.append((f"listen {tls_listen} ssl; server_name {name}; "
                           f"ssl_certificate {{dir}}/{stem}.crt; ssl_certificate_key {{dir}}/{stem}.key;", False))
        for head, redirect in blocks:
            lines.append(f"    server {{ {head}")
            if redirect:
                lines.append("        location / { return 308 https://$host$request_uri; }")
            else:
                for loc, target in sorted(locations.items()):
                    lines.append(location(loc, target))
                if "/" not in locations:
                    lines.append(default)
            lines.append("    }")
    lines.append("}")
    out.conf = "\n".join(lines) + "\n"
    return out
