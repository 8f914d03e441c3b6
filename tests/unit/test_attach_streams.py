"""The shim's attach streams (runtime/attach.py) with a real process behind them: frames split
across reads, output to the log and to the client, stdinOnce, the stream ending with its output."""
from __future__ import annotations

import os
import select
import socket
import time
from pathlib import Path

from emulator.runtime.attach import HEADER, OUTPUT, STDIN, Streams, frame


def pump(streams: Streams, until, timeout: float = 5) -> None:
    """Run the shim's part of the select loop until ``until()``."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        ready, _, _ = select.select(streams.readers() or [], [], [], 0.05)
        streams.ready(ready)


def start(streams: Streams, tmp_path: Path, argv: list[str], stdin_once: bool):
    """``argv`` started on a stream as the shim starts it, and a client attached to it."""
    stream = streams.prepare(str(tmp_path / "attach"), str(tmp_path / "c.log"), False, stdin_once)
    pid = os.fork()
    if pid == 0:
        try:
            stream.become_stdio()
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    stream.started()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(stream.path)
    pump(streams, lambda: stream.clients)
    return stream, pid, client


def exited(pid: int):
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def test_stdin_reaches_the_process_and_its_output_the_client_and_the_log(tmp_path: Path) -> None:
    streams = Streams()
    stream, pid, client = start(streams, tmp_path, ["cat"], stdin_once=True)
    message = frame(STDIN, b"hello\n")
    client.sendall(message[:3])  # a frame split across reads: the shim keeps the part until the rest
    for _ in range(3):
        streams.ready(select.select(streams.readers(), [], [], 0.05)[0])
    client.sendall(message[3:])
    received = b""

    def got_output() -> bool:
        nonlocal received
        if select.select([client], [], [], 0)[0]:
            received += client.recv(4096)
        return len(received) >= HEADER.size + 6
    pump(streams, got_output)
    assert received == frame(OUTPUT, b"hello\n")
    client.close()  # stdinOnce: the first client leaving closes stdin, so cat ends
    status = []
    pump(streams, lambda: status.append(exited(pid)) or status[-1] is not None)
    assert status[-1] == 0
    pump(streams, lambda: not streams.by_path)  # the output ended: the stream is closed
    assert not os.path.exists(stream.path)
    assert (tmp_path / "c.log").read_bytes() == b"hello\n"


def test_without_stdin_once_a_client_leaving_keeps_stdin_open(tmp_path: Path) -> None:
    streams = Streams()
    stream, pid, client = start(streams, tmp_path, ["cat"], stdin_once=False)
    client.close()
    pump(streams, lambda: not stream.clients)
    assert stream.input_open and exited(pid) is None
    os.kill(pid, 9)
    pump(streams, lambda: not streams.by_path)
    os.waitpid(pid, 0)
