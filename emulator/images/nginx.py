"""The ``nginx`` image: real nginx serving a page that names the pod and its IP, or, as the real
image does, what a volume mounted at /usr/share/nginx/html holds (the Kubernetes docs' shared
emptyDir, a ConfigMap's index.html), and the servers the ``*.conf`` files of a volume mounted at
/etc/nginx/conf.d define (then in place of the default server, as the image's default.conf is
replaced). A whole /etc/nginx/nginx.conf of the user's is not used: its log paths are the image's
symlinks to stdout, which this machine's read-only /var/log/nginx does not have.

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


HTML = "/usr/share/nginx/html"
CONF_D = "/etc/nginx/conf.d"


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def render(who: dict[str, str], directory: str, mounts: tuple[str, ...] = ()) -> tuple[str, str]:
    """(nginx.conf, index.html) for a pod: the stock nginx image's behaviour (port 80, a default
    page, access log on stdout) with every path in the container dir but the ones the container
    mounts a volume at (``mounts``: its mountPaths). Pure, so it is unit-tested."""
    http = Block("http")
    http.add("access_log", "/dev/stdout")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        http.add(f"{kind}_temp_path", f"{directory}/{kind}")
    http.add("default_type", "text/html")
    if any(_under(m, CONF_D) for m in mounts):
        http.add("include", f"{CONF_D}/*.conf")
    else:
        server = http.block("server")
        server.add("listen", 80, "default_server")
        server.add("root", HTML if any(_under(m, HTML) for m in mounts) else f"{directory}/html")
        server.block("location", "/").add("index", "index.html")
    # user root: the container dir is root-only, as in a container running as root
    conf = render_conf([Directive("daemon", ("off",)), Directive("user", ("root",)), Directive("worker_processes", (1,)),
                        Directive("pid", (f"{directory}/nginx.pid",)), Directive("error_log", ("stderr", "notice")),
                        Block("events").add("worker_connections", 1024), http])
    safe = {k: html.escape(v) for k, v in who.items()}
    return conf, PAGE.format(**safe)


def prepare(who: dict[str, str], directory: str, argv: list[str],
            mounts: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str], list[str]]:
    """The image's files and the command that uses them: (files by path relative to the
    container's directory, folders to make there, argv). The kubelet writes them before the
    container starts, as an image's layers would hold them; ``directory`` is where the container
    sees its folder. Arguments given to the container are passed to nginx, as the real image's
    CMD would be, except ``-g "daemon off;"``, which the configuration says already."""
    conf, page = render(who, directory, mounts)
    extra = [a for a in argv[1:] if a != "nginx"]
    if "-g" in extra:
        i = extra.index("-g")
        extra = extra[:i] + extra[i + 2:]
    folders = ["html", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    return ({"nginx.conf": conf, "html/index.html": page}, folders,
            ["nginx", "-c", f"{directory}/nginx.conf", "-p", directory, *extra])
