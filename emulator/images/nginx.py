"""The ``nginx`` image: real nginx serving a page that names the pod and its IP.

The configuration is a template (images/templates/nginx.conf) with every path pointing into the
container's private directory, so many nginx pods coexist on one machine. Extra arguments are
passed to nginx as the real image's CMD would be.
"""
from __future__ import annotations

import html
import os
import sys
from pathlib import Path

from emulator.images import identity

PAGE = """<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1>
<p>pod: {pod_name}</p><p>namespace: {pod_namespace}</p><p>ip: {pod_ip}</p><p>node: {node_name}</p>
</body></html>
"""


def render(who: dict[str, str], directory: str) -> tuple[str, str]:
    """(nginx.conf, index.html) for a pod: pure, so it is unit-tested."""
    template = (Path(__file__).parent / "templates" / "nginx.conf").read_text()
    safe = {k: html.escape(v) for k, v in who.items()}
    return template.format(dir=directory, **who), PAGE.format(**safe)


def main(argv: list[str]) -> int:
    who = identity()
    directory = who["container_dir"] or os.getcwd()
    conf, page = render(who, directory)
    for sub in ("html", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    Path(directory, "html", "index.html").write_text(page)
    Path(directory, "nginx.conf").write_text(conf)
    extra = [a for a in argv if a not in ("nginx",)]
    if "-g" in extra:  # the real image's CMD; "daemon off;" is already in our config
        i = extra.index("-g")
        extra = extra[:i] + extra[i + 2:]
    os.execvp("nginx", ["nginx", "-c", os.path.join(directory, "nginx.conf"),
                        "-p", directory, *extra])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
