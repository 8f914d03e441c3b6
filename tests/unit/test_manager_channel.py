"""The CLI's channel to the manager (runtime/api.py): a client that connects and never answers
the key handshake must not block the others, a wrong key gets nothing, errors come back."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from emulator.errors import K8semuError
from emulator.runtime import api


@pytest.fixture
def manager(tmp_path: Path):
    """The manager's accept loop on a socket in ``tmp_path`` with a dispatch that echoes."""
    listener, key = api.make_listener(tmp_path)
    stopping = threading.Event()

    def dispatch(request: dict):
        if request["op"] == "fail":
            raise K8semuError("refused on purpose")
        return {"echo": request}

    threading.Thread(target=api.serve, args=(listener, key, dispatch, stopping), daemon=True).start()
    yield tmp_path
    stopping.set()
    listener.close()


def test_a_request_is_answered(manager: Path) -> None:
    assert api.call(manager, "status", x=1) == {"echo": {"op": "status", "x": 1}}


def test_the_managers_error_is_raised_in_the_cli(manager: Path) -> None:
    with pytest.raises(K8semuError, match="refused on purpose"):
        api.call(manager, "fail")


def test_a_client_silent_in_the_handshake_does_not_block_the_next(manager: Path) -> None:
    """As a CLI interrupted mid-handshake, its socket kept open by the traceback: the CLI's
    next request (down) must still be answered."""
    silent = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
    for s in silent:
        s.connect(str(api.socket_path(manager)))
    try:
        started = time.monotonic()
        assert api.call(manager, "down", timeout=5) == {"echo": {"op": "down"}}
        assert time.monotonic() - started < api.HANDSHAKE_LIMIT / 2
    finally:
        for s in silent:
            s.close()


def test_a_client_without_the_key_gets_no_answer(manager: Path) -> None:
    (manager / "api.key").write_bytes(b"not the key")
    with pytest.raises(K8semuError, match="handshake"):
        api.call(manager, "status")
