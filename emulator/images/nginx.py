"""The ``nginx`` image: real nginx serving a page that names the pod and its IP.

The configuration is built with the same quoting builder as the ingress controller's
(``ingress.nginxconf``), with every path pointing into the container's private directory, so
many nginx pods coexist on one machine. The kubelet writes the files (``prepare``) before the
container starts, so a pod runs nginx itself, not an interpreter first.
"""
from __future__ import annotations

import html

from emulator.ingress.nginxconf import Block, Directive, render as render_conf

PAGE = """<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1>
<p>pod: {pod_name}</p><p>namespace: {pod_namespace}</p><p>ip: {pod_ip}</p><p>node: {node_name}</p>
</body></html>
"""


def render(who: dict[str, str], directory: str) -> tuple[str, str]:
    """(nginx.conf, index.html) for a pod: the stock nginx image's behaviour (port 80, a default
    page, access log on stdout) with every path in the container dir. Pure, so it is unit-tested."""
    http = Block("http")
    http.add("access_log", "/dev/stdout")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        http.add(f"{kind}_temp_path", f"{directory}/{kind}")
    http.add("default_type", "text/html")
    server = http.block("server")
    server.add("listen", 80, "default_server")
    server.add("root", f"{directory}/html")
    server.block("location", "/").add("index", "index.html")
    # user root: the container dir is root-only, as in a container running as root
    conf = render_conf([Directive("daemon", ("off",)), Directive("user", ("root",)), Directive("worker_processes", (1,)),
                        Directive("pid", (f"{directory}/nginx.pid",)), Directive("error_log", ("stderr", "notice")),
                        Block("events").add("worker_connections", 1024), http])
    safe = {k: html.escape(v) for k, v in who.items()}
    return conf, PAGE.format(**safe)


def prepare(who: dict[str, str], directory: str, argv: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """The image's files and the command that uses them: (files by path relative to the
    container's directory, folders to make there, argv). The kubelet writes them before the
    container starts, as an image's layers would hold them; ``directory`` is where the container
    sees its folder. Arguments given to the container are passed to nginx, as the real image's
    CMD would be, except ``-g "daemon off;"``, which the configuration says already."""
    conf, page = render(who, directory)
    extra = [a for a in argv[1:] if a != "nginx"]
    if "-g" in extra:
        i = extra.index("-g")
        extra = extra[:i] + extra[i + 2:]
    folders = ["html", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    return ({"nginx.conf": conf, "html/index.html": page}, folders,
            ["nginx", "-c", f"{directory}/nginx.conf", "-p", directory, *extra])
