"""Ingress objects -> nginx.conf, the way ingress-nginx does it (pure).

- Upstreams are the endpoints' pod IPs and ports, not the ClusterIP; a backend without ready
  endpoints answers 503.
- Hosts: exact, or ``*.example.com`` matching exactly one label (an nginx regex server_name);
  several Ingresses naming one host merge into one server.
- Paths: Exact is ``location = /p``; Prefix matches by path element (``/foo`` matches ``/foo``
  and ``/foo/bar``, not ``/foobar``): ``location = /foo`` plus ``location /foo/``;
  ImplementationSpecific is nginx's own prefix match. nginx picks exact, then the longest prefix.
- No rule matches: the ``defaultBackend`` of an Ingress, else the built-in 404.
- Requests carry X-Forwarded-For, X-Forwarded-Proto, X-Real-IP and the original Host, as
  ingress-nginx sets them (the client's own X-Forwarded-* trusted only with use-forwarded-headers).
- The controller ConfigMap's keys (``options``): ssl-redirect, proxy-body-size, the proxy
  timeouts, use-forwarded-headers, server-tokens.
An Ingress whose backend Service does not exist is reported and left out; the others are served.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from emulator.ingress import nginxconf, options
from emulator.ingress.nginxconf import Block, Raw
from emulator.model import validation


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
    servers = sorted({f"{e['ip']}:{p['port']}" for e in svc["endpoints"] if e["ready"] and validation.is_ip(e["ip"])
                      for p in e["ports"] if p["name"] == port["name"] and isinstance(p["port"], int)})
    return _upstream_name(ns, svc["name"], port["port"]), servers


def _locations(path: str, path_type: str) -> list[tuple[Raw | None, str]]:
    """(modifier, path) of each nginx location an Ingress path becomes."""
    if path_type == "Exact":
        return [(Raw("="), path)]
    if path_type == "Prefix":
        if path == "/":
            return [(None, "/")]
        base = path.rstrip("/")
        return [(Raw("="), base), (None, base + "/")]
    return [(None, path)]


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


def _host_ok(host: str) -> bool:
    return not host or validation.is_dns1123_subdomain(host[2:] if host.startswith("*.") else host)


def _refusal(ing: dict, regex: bool, rewrite: str) -> str | None:
    """Why an Ingress from the snapshot cannot be rendered, re-checking what the spec layer
    checked (the snapshot is a file; the renderer trusts nothing it did not check itself)."""
    if not (validation.is_dns1123_label(ing.get("namespace")) and validation.is_dns1123_subdomain(ing.get("name"))):
        return "invalid name"
    if rewrite and validation.check_rewrite_target(rewrite):
        return f"annotation rewrite-target: {validation.check_rewrite_target(rewrite)}"
    for rule in ing["rules"]:
        if not _host_ok(rule["host"]):
            return f"invalid host {rule['host']!r}"
        for p in rule["paths"]:
            message = validation.check_ingress_path(p["path"], "ImplementationSpecific" if regex else p["path_type"])
            if message:
                return f"invalid path: {message}"
    for t in ing.get("tls", []):
        if not all(_host_ok(h) for h in t["hosts"]) or not validation.is_dns1123_subdomain(t["secret"]):
            return "invalid tls entry"
    return None


def render(snapshot: dict, directory: str = "{dir}", listen: int = 80, tls_listen: int = 443) -> Rendered:
    """The whole nginx.conf for the ingresses of class nginx (or without a class when nginx is
    the default class); ``directory`` is the controller's private folder (certificates, temp
    files, pid). An Ingress that cannot be served is left out and reported in ``problems``."""
    out = Rendered("")
    opts = options.parse(snapshot.get("controller_config"))
    out.problems += [f"ConfigMap {options.NAMESPACE}/{options.NAME}: {p}" for p in opts.problems]
    upstreams: dict[str, list[str]] = {}
    servers: dict[str, dict[tuple, tuple]] = {}  # server_name -> (modifier, path) -> (upstream, rewrite, scheme)
    default_backend = None
    tls_hosts: dict[str, tuple[str, bool]] = {}  # server_name -> (certificate stem, redirect HTTP)
    # ingress-nginx: use-regex (or rewrite-target, which implies it) on one Ingress of a host makes
    # every path of that host, from any Ingress, a case-insensitive regex location
    regex_hosts = {_server_name(rule["host"]) for ing in snapshot["ingresses"] if _path_options(ing)[0]
                   for rule in ing["rules"]}
    exact_paths: set[tuple[str, str]] = set()  # (server_name, path) an Exact path claimed
    for ing in snapshot["ingresses"]:
        where = f"{ing['namespace']}/{ing['name']}"
        regex, rewrite, scheme = _path_options(ing)
        refused = _refusal(ing, regex, rewrite)
        if refused:
            out.problems.append(f"Ingress {where}: {refused}; the Ingress is not served")
            continue
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
        redirect = (ing.get("annotations", {}) or {}).get(ANN + "ssl-redirect",
                                                           "true" if opts.ssl_redirect else "false") != "false"
        for t in ing.get("tls", []):
            stem = f"certs/{ing['namespace']}_{t['secret']}"
            out.files[stem + ".crt"], out.files[stem + ".key"] = t["pem"]["tls.crt"], t["pem"]["tls.key"]
            for host in t["hosts"]:
                tls_hosts.setdefault(_server_name(host), (stem, redirect))
        for host, p, target in resolved:
            upstreams[target[0]] = target[1]
            name = _server_name(host)
            locations = servers.setdefault(name, {})
            if name in regex_hosts:  # ingress-nginx: case-insensitive regex locations, rewritten if asked
                pattern = "^" + p["path"]
                locations.setdefault((Raw("~*"), pattern), (target[0], rewrite and ("(?i)" + pattern, rewrite), scheme))
                continue
            for loc in _locations(p["path"], p["path_type"]):
                exact = p["path_type"] == "Exact"
                if exact and (name, loc[1]) not in exact_paths:
                    locations[loc] = (target[0], None, scheme)  # Exact beats a Prefix's implied exact
                    exact_paths.add((name, loc[1]))
                else:
                    locations.setdefault(loc, (target[0], None, scheme))
    try:
        out.conf = _conf(directory, listen, tls_listen, upstreams, servers, default_backend, tls_hosts, opts)
    except nginxconf.NginxConfError as exc:  # unreachable for checked input: say so rather than write it
        out.problems.append(f"configuration refused: {exc}")
        out.conf = _conf(directory, listen, tls_listen, {}, {}, None, {}, options.Options())
    return out


def _slashless(locations: dict, default_backend) -> dict:
    """For each ``location = /p/`` (an Exact path ending in a slash), ``location = /p`` routed as
    the request would be without it. Why: nginx answers ``/p`` with a 301 to ``/p/`` when a
    proxied location is named ``/p/``; ingress-nginx's Exact ``/p/`` does not match ``/p``, which
    goes to the longest other prefix, else the default backend (the conformance suite's
    "exact /foo/ does not match request /foo")."""
    out = {}
    for (modifier, path) in locations:
        if modifier != Raw("=") or not path.endswith("/") or len(path) < 2 or (modifier, path[:-1]) in locations:
            continue
        bare = path[:-1]
        prefixes = [p for m, p in locations if m is None and bare.startswith(p)]
        if prefixes:
            out[(Raw("="), bare)] = locations[(None, max(prefixes, key=len))]
        elif default_backend:
            out[(Raw("="), bare)] = (default_backend[0], None, "http")
        else:
            out[(Raw("="), bare)] = ("", None, "404")
    return out


def _conf(directory: str, listen: int, tls_listen: int, upstreams: dict, servers: dict, default_backend,
          tls_hosts: dict, opts: options.Options) -> str:
    # one worker: on a 2-core machine shared with the client and the backends, more workers only contend
    top: list = [nginxconf.Directive("daemon", ("off",)), nginxconf.Directive("user", ("root",)),
                 nginxconf.Directive("worker_processes", (1,)), nginxconf.Directive("pid", (f"{directory}/nginx.pid",)),
                 nginxconf.Directive("error_log", ("stderr", "notice"))]
    top.append(Block("events").add("worker_connections", 1024))
    http = Block("http")
    http.add("log_format", "ingress", Raw("'$remote_addr - [$time_local] \"$request\" $status $host -> $upstream_addr'"))
    http.add("access_log", "/dev/stdout", "ingress")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        http.add(f"{kind}_temp_path", f"{directory}/{kind}")
    http.add("server_tokens", "on" if opts.server_tokens else "off")
    http.add("client_max_body_size", opts.proxy_body_size)
    for name in ("connect", "read", "send"):
        http.add(f"proxy_{name}_timeout", f"{getattr(opts, f'proxy_{name}_timeout')}s")
    # ingress-nginx: the client's X-Forwarded-* are believed only with use-forwarded-headers
    # (behind another proxy); then the client address is the one X-Forwarded-For names
    scheme = http.block("map", Raw("$http_x_forwarded_proto"), Raw("$pass_access_scheme"))
    if opts.use_forwarded_headers:
        scheme.add("default", Raw("$http_x_forwarded_proto"))
        scheme.add(Raw('""'), Raw("$scheme"))
        http.add("real_ip_header", "X-Forwarded-For")
        http.add("real_ip_recursive", "on")
        http.add("set_real_ip_from", "0.0.0.0/0")
    else:
        scheme.add("default", Raw("$scheme"))
    http.add("proxy_set_header", "Host", Raw("$host"))
    http.add("proxy_set_header", "X-Real-IP", Raw("$remote_addr"))
    http.add("proxy_set_header", "X-Forwarded-For", Raw("$remote_addr"))
    http.add("proxy_set_header", "X-Forwarded-Proto", Raw("$pass_access_scheme"))
    http.add("proxy_http_version", "1.1")
    http.add("proxy_set_header", "Connection", Raw('""'))  # keep upstream connections alive, as ingress-nginx does
    for name, members in sorted(upstreams.items()):
        if members:
            up = http.block("upstream", name)
            for member in members:
                up.add("server", member)
            up.add("keepalive", 320)

    def location(server: Block, loc: tuple, target: tuple) -> None:
        upstream, rewrite, scheme = target
        block = server.block("location", *([loc[0]] if loc[0] is not None else []), loc[1])
        if scheme == "404":  # nothing else matches: the built-in default backend's answer
            block.add("default_type", "text/plain")
            block.add("return", 404, Raw('"default backend - 404\\n"'))
            return
        if not upstreams.get(upstream):
            block.add("return", 503)
            return
        if rewrite:
            block.add("rewrite", rewrite[0], rewrite[1], "break")
        block.add("proxy_pass", f"{scheme}://{upstream}")

    servers.setdefault("_", {})
    for name, locations in sorted(servers.items(), key=lambda kv: kv[0] != "_"):
        variants = [("http", name in tls_hosts and tls_hosts[name][1])]
        if name == "_" or name in tls_hosts:
            variants.append(("https", False))
        for kind, redirect in variants:
            server = http.block("server")
            if kind == "http":
                server.add("listen", listen, *(("default_server",) if name == "_" else ()))
            else:
                server.add("listen", tls_listen, "ssl", *(("default_server",) if name == "_" else ()))
            server.add("server_name", name)
            if kind == "https":  # the controller's fake certificate answers HTTPS for unknown names
                stem = "certs/default" if name == "_" else tls_hosts[name][0]
                server.add("ssl_certificate", f"{directory}/{stem}.crt")
                server.add("ssl_certificate_key", f"{directory}/{stem}.key")
            if redirect:
                server.block("location", "/").add("return", 308, Raw("https://$host$request_uri"))
                continue
            for loc, target in sorted({**locations, **_slashless(locations, default_backend)}.items(),
                                      key=lambda kv: (kv[0][1], str(kv[0][0]))):
                location(server, loc, target)
            if (None, "/") not in locations:
                if default_backend:
                    location(server, (None, "/"), (default_backend[0], None, "http"))
                else:
                    fallback = server.block("location", "/")
                    fallback.add("default_type", "text/plain")
                    fallback.add("return", 404, Raw('"default backend - 404\\n"'))
    return nginxconf.render(top + [http])
