"""A container's streams for ``kubectl attach`` and ``kubectl run -i/-t``, kept by the shim as
conmon keeps them for CRI-O: a container with ``stdin`` or ``tty`` gets a pipe for its stdin
and one for its output (``tty``: a pseudo-terminal for both), the shim holds the other ends,
copies everything the container writes into its log (so ``kubectl logs`` works as before) and
to every attached client, and listens on a Unix socket (root-only, in the run directory) for
clients; the API's attach handler is the only one.

Frames on that socket, both ways: ``channel (1 byte) | length (4 bytes, big-endian) | data``.
Client to shim: 0 stdin bytes, 4 a terminal size (kubectl's JSON ``{"Width", "Height"}``),
255 close stdin (only with ``stdinOnce``: otherwise, as the API documents, the container never
reads end-of-file). Shim to client: 1 output. The shim closes the clients when the output ends
(every writer gone: the container has exited). ``stdinOnce``: stdin is closed when the first
attached client leaves (a terminal gets end-of-file, ^D).

The shim is single-threaded and must never wait on a client: every descriptor is
non-blocking; a client that does not read its output is dropped, stdin a container does not
read is dropped beyond the pipe's buffer.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import termios

HEADER = struct.Struct("!BI")
STDIN, OUTPUT, RESIZE, CLOSE = 0, 1, 4, 255
MAX_FRAME = 1 << 20
EOT = b"\x04"


def frame(channel: int, data: bytes) -> bytes:
    return HEADER.pack(channel, len(data)) + data


def set_size(fd: int, data: bytes) -> None:
    """A terminal size message from kubectl (``{"Width": 80, "Height": 24}``); a bad one is ignored."""
    try:
        size = json.loads(data)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(size["Height"]), int(size["Width"]), 0, 0))
    except (ValueError, KeyError, TypeError, OSError):
        pass


class Stream:
    """One attachable container's streams, from before its fork until its output ends."""

    def __init__(self, path: str, log: str | None, tty: bool, stdin_once: bool) -> None:
        self.path, self.tty, self.stdin_once = path, tty, stdin_once
        if tty:
            master, slave = os.openpty()  # both close-on-exec; the child dup2s the slave to 0, 1, 2
            self.input, self.output, self.child_fds = master, master, (slave, slave)
        else:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            self.input, self.output, self.child_fds = in_w, out_r, (in_r, out_w)
        os.set_blocking(self.input, False)
        os.set_blocking(self.output, False)
        self.log = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600) if log else None
        if os.path.lexists(path):
            os.unlink(path)  # the socket of this container's previous run
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.clients: dict[int, tuple[socket.socket, bytearray]] = {}
        self.input_open = True
        self.had_client = False

    # -- in the container's process, after fork --------------------------------------------
    def become_stdio(self) -> None:
        """Make the child's 0, 1 and 2 these streams (its controlling terminal with ``tty``)."""
        child_in, child_out = self.child_fds
        if self.tty:
            fcntl.ioctl(child_in, termios.TIOCSCTTY, 0)
        os.dup2(child_in, 0)
        os.dup2(child_out, 1)
        os.dup2(child_out, 2)

    # -- in the shim ---------------------------------------------------------------------------
    def started(self) -> None:
        """The container runs: the shim lets go of the child's ends (so the output ends with it)."""
        for fd in set(self.child_fds):
            os.close(fd)
        self.child_fds = ()

    def readers(self) -> list:
        return [self.output, self.listener, *(c for c, _ in self.clients.values())]

    def ready(self, fd) -> bool:
        """Handle one readable descriptor of this stream; False once the output has ended."""
        if fd is self.listener:
            self._accept()
        elif fd == self.output:
            return self._copy_output()
        else:
            self._from_client(fd)
        return True

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        self.clients[conn.fileno()] = (conn, bytearray())
        self.had_client = True

    def _copy_output(self) -> bool:
        try:
            data = os.read(self.output, 65536)
        except BlockingIOError:
            return True
        except OSError:  # EIO: a terminal whose every writer is gone
            data = b""
        if not data:
            return False
        if self.log is not None:
            os.write(self.log, data)
        message = frame(OUTPUT, data)
        for key, (conn, _) in list(self.clients.items()):
            try:
                conn.sendall(message)
            except OSError:  # not reading (its buffer is full) or gone: it is dropped
                self._drop(key)
        return True

    def _from_client(self, conn: socket.socket) -> None:
        key = conn.fileno()
        _, buffer = self.clients[key]
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(key)
            return
        buffer += data
        while len(buffer) >= HEADER.size:
            channel, length = HEADER.unpack_from(buffer)
            if length > MAX_FRAME:
                self._drop(key)
                return
            if len(buffer) < HEADER.size + length:
                break
            payload = bytes(buffer[HEADER.size:HEADER.size + length])
            del buffer[:HEADER.size + length]
            self._message(channel, payload)

    def _message(self, channel: int, payload: bytes) -> None:
        if channel == STDIN and self.input_open and payload:
            try:
                os.write(self.input, payload)
            except OSError:  # the container does not read (the pipe is full) or is gone
                pass
        elif channel == RESIZE and self.tty:
            set_size(self.input, payload)
        elif channel == CLOSE and self.stdin_once:  # without stdinOnce the container never reads EOF
            self._close_input()

    def _close_input(self) -> None:
        if not self.input_open:
            return
        self.input_open = False
        if self.tty:
            try:
                os.write(self.input, EOT)  # the terminal is the output too: end-of-file, not close
            except OSError:
                pass
        else:
            os.close(self.input)

    def _drop(self, key: int) -> None:
        conn, _ = self.clients.pop(key)
        conn.close()
        if self.stdin_once and not self.clients:
            self._close_input()

    def close(self) -> None:
        for key in list(self.clients):
            conn, _ = self.clients.pop(key)
            conn.close()
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        fds = {self.output, *self.child_fds}
        if self.input_open or self.tty:
            fds.add(self.input)
        if self.log is not None:
            fds.add(self.log)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


class Streams:
    """Every attachable container's streams in the shim, for its select loop."""

    def __init__(self) -> None:
        self.by_path: dict[str, Stream] = {}

    def prepare(self, path: str, log: str | None, tty: bool, stdin_once: bool) -> Stream:
        old = self.by_path.pop(path, None)
        if old is not None:  # the container restarted before its old output ended
            old.close()
        stream = Stream(path, log, tty, stdin_once)
        self.by_path[path] = stream
        return stream

    def forget(self, stream: Stream) -> None:
        """Its container did not start."""
        if self.by_path.get(stream.path) is stream:
            del self.by_path[stream.path]
        stream.close()

    def readers(self) -> list:
        return [fd for s in self.by_path.values() for fd in s.readers()]

    def ready(self, readable: list) -> None:
        for stream in list(self.by_path.values()):
            mine = stream.readers()
            for fd in readable:
                if any(fd is m or fd == m for m in mine) and not stream.ready(fd):
                    self.forget(stream)
                    break
