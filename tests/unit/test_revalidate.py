"""The controller's purge of ovs-vswitchd's datapath flow cache: the JSON-RPC it speaks on the
control socket, against a stand-in server (the real one is exercised by every integration test
on openflow, whose generations are confirmed only after it)."""
from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from emulator.controller import revalidate


def serve_once(path: Path, replies: list[bytes]) -> dict:
    """Accept one connection, read one request, send ``replies`` as separate writes."""
    seen: dict = {}
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            seen["request"] = json.loads(conn.recv(65536))
            for part in replies:
                conn.sendall(part)
        server.close()
    threading.Thread(target=run, daemon=True).start()
    return seen


def test_purge_sends_the_command_and_reads_a_reply_split_across_writes(tmp_path) -> None:
    (tmp_path / "ovs-vswitchd.pid").write_text(f"{os.getpid()}\n")
    seen = serve_once(tmp_path / f"ovs-vswitchd.{os.getpid()}.ctl", [b'{"id":0,"res', b'ult":"","error":null}'])
    revalidate.purge(tmp_path)
    assert seen["request"] == {"method": "revalidator/purge", "params": [], "id": 0}


def test_an_error_reply_is_a_purge_failure(tmp_path) -> None:
    (tmp_path / "ovs-vswitchd.pid").write_text("42")
    serve_once(tmp_path / "ovs-vswitchd.42.ctl", [b'{"id":0,"result":null,"error":"\\"revalidator/purge\\" is not a valid command"}'])
    with pytest.raises(revalidate.PurgeFailed, match="not a valid command"):
        revalidate.purge(tmp_path)


def test_no_ovs_vswitchd_is_a_purge_failure_not_a_crash(tmp_path) -> None:
    with pytest.raises(revalidate.PurgeFailed, match="pid file"):
        revalidate.purge(tmp_path)
    (tmp_path / "ovs-vswitchd.pid").write_text("42")
    with pytest.raises(revalidate.PurgeFailed, match="ovs-vswitchd.42.ctl"):
        revalidate.purge(tmp_path)
