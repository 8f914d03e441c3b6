"""The manager process with its API server: ``python -m emulator.api RUN SPEC [BASE]``.

``k8semu up`` starts this (not ``emulator.runtime.manager``) so that the layer that serves the
API composes the manager, and the manager never imports the API.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

import yaml

from emulator.api import kubeconfig, pki
from emulator.api.server import ApiServer
from emulator.cluster.render import KUBE_VERSION
from emulator.runtime import manager as manager_process
from emulator.runtime.manager import Manager


def start_api(manager: Manager) -> Callable[[], None]:
    """Make the cluster's certificates, serve the API on a free loopback port, and write the
    admin kubeconfig into the run directory (``up`` merges it into the user's)."""
    root = manager.run / "pki"
    root.mkdir(mode=0o700, exist_ok=True)
    paths = pki.make(root, manager.config.name, ["127.0.0.1"])
    server = ApiServer(manager, paths, KUBE_VERSION)
    port = server.start()
    manager.observers.append(server.handlers.hub.poke)
    config = kubeconfig.admin_config(manager.config.name, f"https://127.0.0.1:{port}", paths)
    fd = os.open(manager.run / "kubeconfig", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return server.stop


if __name__ == "__main__":
    sys.exit(manager_process.main(sys.argv[1:], services=[start_api]))
