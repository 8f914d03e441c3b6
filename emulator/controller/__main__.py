"""Launcher for the k8semu controller (os-ken no longer ships ``osken-manager``).

    python -m emulator.controller --view RUN/view.json --status RUN/controller.json --port 6653
"""
from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.controller")
    parser.add_argument("--view", required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--port", type=int, default=6653)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    os.environ["K8SEMU_VIEW"], os.environ["K8SEMU_STATUS"] = args.view, args.status
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from os_ken.lib import hub
    hub.patch(thread=False)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    cfg.CONF(args=["--ofp-tcp-listen-port", str(args.port), "--ofp-listen-host", args.host],
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
