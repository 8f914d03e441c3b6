"""The manager process with its API server: ``python -m emulator.api RUN SPEC [BASE]``.

``k8semu up`` starts this (not ``emulator.runtime.lifetime``) so that the layer that serves the
API composes the manager, and the manager never imports the API.
"""
from __future__ import annotations

import os
import secrets
import sys
from typing import Callable

import yaml

from emulator.api import kubeconfig, pki
from emulator.api.server import ApiServer
from emulator.cluster.apimeta import KUBE_VERSION
from emulator.model import naming, satoken
from emulator.runtime import lifetime
from emulator.runtime.healthcheck import listen_in
from emulator.runtime.manager import Manager

IN_CLUSTER_PORT = 6443  # kubeadm's; the ``kubernetes`` Service's endpoint
ADMIN_CONF = "admin.conf"  # in the run directory: kubectl's credentials on the control-plane node


def control_plane(manager: Manager):
    """The node that holds the API server's in-cluster address (the ``kubernetes`` Endpoints)."""
    nodes = manager.config.nodes
    return next((n for n in nodes if n.role == "control-plane"), nodes[0])


def prepare(manager: Manager) -> None:
    """Before any pod starts: the certificates (valid for 127.0.0.1, the ``kubernetes`` Service
    and the control-plane node's address) and the ServiceAccount signing key, which the kubelet
    reads to give pods their token and CA."""
    root = manager.run / "pki"
    root.mkdir(mode=0o700, exist_ok=True)
    paths = pki.make(root, manager.config.name, ["127.0.0.1", manager.config.services.address(1),
                                                 control_plane(manager).ip])
    manager.set_root_ca(paths.ca.read_text())
    fd = os.open(manager.run / satoken.KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))


def start_api(manager: Manager) -> Callable[[], None]:
    """Serve the API on a free loopback port and, for in-cluster clients, on the control-plane
    node's address :6443 (a socket made inside that node's network namespace, so nothing more
    listens in the machine's own); write the admin kubeconfig into the run directory (``up``
    merges it into the user's), and ``admin.conf``, the same credentials for the control-plane
    node's address, which commands run on that node use as on a kubeadm control-plane node
    (``/etc/kubernetes/admin.conf``)."""
    paths = pki.Paths(manager.run / "pki")
    node = control_plane(manager)
    inside = listen_in(naming.node_netns(manager.records.scope, node.name), IN_CLUSTER_PORT)
    server = ApiServer(manager, paths, KUBE_VERSION, (manager.run / satoken.KEY_FILE).read_bytes(), [inside])
    port = server.start()
    manager.observers.append(server.handlers.hub.observe)
    for name, server_url in (("kubeconfig", f"https://127.0.0.1:{port}"),
                             (ADMIN_CONF, f"https://{node.ip}:{IN_CLUSTER_PORT}")):
        config = kubeconfig.admin_config(manager.config.name, server_url, paths)
        fd = os.open(manager.run / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
    return server.stop


if __name__ == "__main__":
    sys.exit(lifetime.main(sys.argv[1:], services=[start_api], prepare=[prepare]))
