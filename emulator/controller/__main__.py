"""Launcher for the k8semu controller (os-ken no longer ships ``osken-manager``).

    python -m emulator.controller --view RUN/view.json --status RUN/controller.json --socket RUN/ofp.sock

The switches connect over a Unix socket (mode 0600, in Open vSwitch's root-only run directory,
the only place OVS accepts one), never a TCP port: no other local user can listen in the
controller's place or connect to it.
os-ken's StreamServer listens on a Unix socket when its listen host is a path in an existing
folder (os_ken.lib.hub).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys


class _UnixConnection:
    """A switch's connection over a Unix socket, for os-ken's Datapath, which sets TCP_NODELAY on
    every connection (os-ken 4.2: ``Datapath.__init__``) and so fails on a Unix socket that its
    own StreamServer accepts. Only that TCP option is skipped; everything else is the socket's."""

    def __init__(self, sock) -> None:
        self._sock = sock

    def setsockopt(self, level: int, option: int, value) -> None:
        import socket
        if level != socket.IPPROTO_TCP:
            self._sock.setsockopt(level, option, value)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.controller")
    parser.add_argument("--view", required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--socket", required=True, help="the Unix socket switches connect to")
    args = parser.parse_args(argv)
    os.umask(0o077)
    if os.path.lexists(args.socket):  # a previous controller's of this cluster (up checked it was free)
        os.unlink(args.socket)
    os.environ["K8SEMU_VIEW"], os.environ["K8SEMU_STATUS"] = args.view, args.status
    # the socket is in Open vSwitch's run directory, where ovs-vswitchd's control socket is too
    os.environ["K8SEMU_OVS_RUN"] = os.path.dirname(os.path.abspath(args.socket))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from os_ken.lib import hub
    hub.patch(thread=False)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    from os_ken.controller import controller

    factory = controller.datapath_connection_factory
    controller.datapath_connection_factory = lambda sock, address: factory(_UnixConnection(sock), address)

    cfg.CONF(args=["--ofp-tcp-listen-port", "6653", "--ofp-listen-host", args.socket],
             project="os_ken", version="k8semu")
    manager = AppManager.get_instance()
    manager.load_apps(["emulator.controller.app"])
    services = manager.instantiate_apps(**manager.create_contexts())
    try:
        hub.joinall(services)
    finally:
        manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
