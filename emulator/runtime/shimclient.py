"""The manager's side of the shim (``runtime.shim``): start it, send it requests, collect the
exit statuses it reports. A reader thread files replies by request id and exits in a queue,
so a request never waits behind an event and the kubelet drains exits on its own tick.
"""
from __future__ import annotations

import itertools
import json
import queue
import socket
import subprocess
import sys
import threading
from typing import Any, Callable

from emulator.errors import RuntimeFailure


class ShimGone(RuntimeFailure):
    """The shim process died; the manager restarts it."""


class Shim:
    def __init__(self, log_path: str, on_exit: Callable[[], None] = lambda: None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "emulator.runtime.shim", str(theirs.fileno())],
                                         pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()  # one request at a time: the shim answers in order
        self.ids = itertools.count(1)
        self.replies: dict[int, Any] = {}
        self.arrived = threading.Condition()
        self.exits: "queue.Queue[tuple[int, int]]" = queue.Queue()
        self.gone = False
        self.on_exit = on_exit  # called when a process exits (the manager wakes its loop)
        threading.Thread(target=self._read, daemon=True, name="shim-reader").start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if message.get("event") == "exit":
                        self.exits.put((message["pid"], message["status"]))
                        self.on_exit()
                    else:
                        with self.arrived:
                            self.replies[message.get("id")] = message
                            self.arrived.notify_all()
        except (OSError, ValueError):
            pass
        with self.arrived:
            self.gone = True
            self.arrived.notify_all()

    def request(self, op: str, items: list[dict], timeout: float = 60) -> list[dict]:
        """Send one batch; returns one result per item ({"pid", ...} or {"error"}).

        Raises:
            ShimGone: the shim died or did not answer in time.
        """
        if not items:
            return []
        with self.lock:
            rid = next(self.ids)
            try:
                self.sock.sendall(json.dumps({"id": rid, "op": op, "items": items}).encode() + b"\n")
            except OSError:
                raise ShimGone("the pod runtime (shim) is gone") from None
            with self.arrived:
                if not self.arrived.wait_for(lambda: rid in self.replies or None in self.replies or self.gone,
                                             timeout):
                    raise ShimGone(f"the pod runtime (shim) did not answer {op!r} within {timeout}s")
                reply = self.replies.pop(rid, None) or self.replies.pop(None, None)
        if reply is None:
            raise ShimGone("the pod runtime (shim) is gone")
        if "error" in reply and "results" not in reply:
            raise RuntimeFailure(f"shim: {reply['error']}")
        return reply["results"]

    def drain_exits(self) -> list[tuple[int, int]]:
        out = []
        while True:
            try:
                out.append(self.exits.get_nowait())
            except queue.Empty:
                return out

    def alive(self) -> bool:
        return not self.gone and self.proc.poll() is None

    def close(self) -> None:
        try:  # shutdown, not just close: the reader thread's pending recv would keep the socket open
            self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
