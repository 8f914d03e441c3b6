"""BIRD's control socket spoken directly (what ``birdc`` does), for the checks the manager makes
often: a node's BGP sessions every few milliseconds while its routes converge. ``birdc`` is a
process per question; at 50 nodes those processes took the CPU BIRD needed to open its sessions.

The protocol (BIRD's doc/prog: "Remote control"): the server greets with a ``0001`` line; each
command's reply is lines ``CODE-text`` (more follow) or `` text`` (continuation), ended by a
line ``CODE text`` (code and a space). Codes 8xxx and 9xxx are errors.

The socket's path may pass the 107 bytes a unix socket address holds (the run directory, the
node's name): it is reached through ``/proc/self/fd/<the folder's descriptor>/``.
"""
from __future__ import annotations

import os
import re
import socket

END = re.compile(rb"^(\d{4}) (.*)$")
TIMEOUT = 5.0


class BirdError(OSError):
    pass


def command(folder: str, words: str, name: str = "bird.ctl") -> list[str]:
    """The reply's lines to one command (codes stripped).

    Raises:
        BirdError: BIRD answered with an error code, or not at all.
        OSError: the socket is not there (BIRD not started, or gone).
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(f"/proc/self/fd/{fd}/{name}")
            reader = sock.makefile("rb")
            _reply(reader)  # the greeting
            sock.sendall(words.encode() + b"\n")
            return _reply(reader)
    finally:
        os.close(fd)


def _reply(reader) -> list[str]:
    lines = []
    while True:
        raw = reader.readline()
        if not raw:
            raise BirdError("BIRD closed the control connection")
        raw = raw.rstrip(b"\n")
        end = END.match(raw)
        if end:
            if end.group(1)[:1] in (b"8", b"9"):
                raise BirdError(end.group(2).decode(errors="replace"))
            if end.group(2):
                lines.append(end.group(2).decode(errors="replace"))
            return lines
        lines.append(raw[5:].decode(errors="replace") if raw[4:5] == b"-" else raw[1:].decode(errors="replace"))


def bgp_sessions(folder: str) -> dict[str, str]:
    """Each BGP protocol's state and info (``show protocols``): name -> "up Established"."""
    out = {}
    for line in command(folder, "show protocols"):
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "BGP":
            out[parts[0]] = " ".join(parts[3:4] + parts[5:])
    return out
