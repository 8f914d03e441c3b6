"""How the CLI talks to the manager: ``multiprocessing.connection`` over a Unix socket in the
run directory (root-only, with an authentication key), carrying small request dicts and
replies. Standard library only; pickling is safe here because both ends are this package run
by root on one machine.
"""
from __future__ import annotations

import secrets
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any

from emulator.errors import K8semuError, NoClusterError


def socket_path(run: Path) -> Path:
    return run / "api.sock"


def make_listener(run: Path) -> Listener:
    key = secrets.token_bytes(32)
    key_file = run / "api.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key)
    sock = socket_path(run)
    sock.unlink(missing_ok=True)
    return Listener(str(sock), family="AF_UNIX", authkey=key)


def call(run: Path, op: str, timeout: float = 120, **args: Any) -> Any:
    """Send one request; re-raise the manager's K8semuError here.

    Raises:
        NoClusterError: no manager is listening.
        K8semuError: whatever the manager raised for this request.
    """
    try:
        conn = Client(str(socket_path(run)), family="AF_UNIX",
                      authkey=(run / "api.key").read_bytes())
    except (OSError, EOFError):
        raise NoClusterError("no cluster is running (start one with: sudo k8semu up SPEC)") from None
    with conn:
        conn.send({"op": op, **args})
        if not conn.poll(timeout):
            raise K8semuError(f"the cluster manager did not answer {op!r} within {timeout}s")
        reply = conn.recv()
    if "error" in reply:
        raise reply["error"]
    return reply["result"]
