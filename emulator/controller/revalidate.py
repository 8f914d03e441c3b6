"""Datapath flows made from OpenFlow flows that are gone.

A switch's barrier reply says its OpenFlow tables hold what was sent, not that packets follow
them: Open vSwitch forwards from its datapath's flow cache (megaflows translated from the tables
on a packet's first miss), and its revalidator threads bring the cache in line with changed
tables on their own schedule, tens to hundreds of milliseconds later on a busy two-core machine.
Until then a connection the new policy denies still goes through (a cached "+new: forward") and
one it now allows is still dropped. Confirming a generation only after ``revalidator/purge``
(which empties the cache there and then; every next packet is translated from the current
tables) keeps ``synced`` true to its word: what the API shows is what the data plane does.
Purging is harmless to traffic: established connections stay in conntrack, and the cache refills
from the first packets.

ovs-vswitchd answers JSON-RPC on its control socket (what ``ovs-appctl`` speaks), so the
controller asks it directly rather than starting an ``ovs-appctl`` process for every view.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path


class PurgeFailed(Exception):
    pass


def control_socket(ovs_run: Path) -> Path:
    """ovs-vswitchd's control socket in its run directory (``ovs-vswitchd.PID.ctl``)."""
    try:
        pid = int((ovs_run / "ovs-vswitchd.pid").read_text().strip())
    except (OSError, ValueError) as exc:
        raise PurgeFailed(f"cannot read ovs-vswitchd's pid file in {ovs_run}: {exc}") from exc
    return ovs_run / f"ovs-vswitchd.{pid}.ctl"


def call(path: Path, method: str, timeout: float = 5.0) -> str:
    """One unixctl command's reply text.

    Raises:
        PurgeFailed: no answer, or ovs-vswitchd answered with an error.
    """
    decoder = json.JSONDecoder()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"method": method, "params": [], "id": 0}).encode())
            buf = ""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise PurgeFailed(f"ovs-vswitchd closed {path} before answering {method}")
                buf += chunk.decode(errors="replace")
                try:
                    reply, _ = decoder.raw_decode(buf.lstrip())
                    break
                except ValueError:
                    continue  # the rest of the reply is on its way
    except OSError as exc:
        raise PurgeFailed(f"{method} on {path}: {exc}") from exc
    if not isinstance(reply, dict) or reply.get("error") is not None:
        raise PurgeFailed(f"{method}: ovs-vswitchd answered {reply!r}")
    return str(reply.get("result") or "")


def purge(ovs_run: Path) -> None:
    """Empty ovs-vswitchd's datapath flow cache (``ovs-appctl revalidator/purge``).

    Raises:
        PurgeFailed: see ``call``.
    """
    call(control_socket(ovs_run), "revalidator/purge")
