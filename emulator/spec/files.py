"""Reading input files safely as root: regular files only, bounded, and never a file that a
symlink or a path in someone else's manifest smuggles in.

k8semu runs as root and reads specs, manifests and scenarios that users copy from courses and
the internet. So a file is opened without blocking (a FIFO or a device is refused before any byte
is read), checked to be a regular file, and read only up to ``MAX_FILE_BYTES`` (the API server
refuses request bodies over 3 MiB; a manifest file is the same kind of thing). A *reference*
found inside a file (a spec's ``manifests:``, a scenario's ``apply:``) must resolve, symlinks
included, inside the folder its rules allow (``confine``); a symlink given on the command line
must not lead out of its own folder. Text must be UTF-8; the first bad byte is located.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from emulator.errors import Problem, SourceRef, SpecError

MAX_FILE_BYTES = 3 * 1024 * 1024
STDIN_NAMES = ("-", "/dev/stdin")


def _refuse(path: str | Path, message: str, where: SourceRef | None = None) -> SpecError:
    """A refusal located at the reference (``where``) when there is one; it names the file."""
    return SpecError([Problem(where, "", f"{path}: {message}")])


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_symlinks(path: Path, where: SourceRef | None = None) -> None:
    """Refuse a path that is a symlink leading out of the folder that holds it.

    Raises:
        SpecError: the symlink's target lies outside the symlink's own folder.
    """
    if not path.is_symlink():
        return
    folder = path.absolute().parent.resolve()
    target = path.resolve()
    if not _inside(target, folder):
        raise _refuse(path, f"is a symlink to {target}, outside its folder {folder}; not read", where)


def confine(base: Path, reference: str, root: Path, where: SourceRef | None = None,
            what: str = "file") -> Path:
    """Resolve ``reference`` (relative to ``base``) and insist that it stays under ``root``.

    Raises:
        SpecError: the reference is absolute or leaves ``root`` (through ``..`` or a symlink).
    """
    if not reference or "\0" in reference:
        raise SpecError([Problem(where, "", f"{what} path is empty or contains a NUL byte")])
    if os.path.isabs(reference):
        raise SpecError([Problem(where, "", f"{what} path {reference!r} is absolute; name files relative to "
                                            f"{root} (k8semu reads nothing outside it)")])
    target = (base / reference)
    resolved = target.resolve()
    if not _inside(resolved, root.resolve()):
        raise SpecError([Problem(where, "", f"{what} path {reference!r} leads to {resolved}, outside "
                                            f"{root.resolve()}; k8semu reads nothing outside it")])
    return target


def read_text(path: str | Path, where: SourceRef | None = None, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a regular file (or standard input), at most ``limit`` bytes, as UTF-8.

    Raises:
        SpecError: missing, unreadable, not a regular file, too large, or not UTF-8.
    """
    name = str(path)
    if name in STDIN_NAMES:
        data = sys.stdin.buffer.read(limit + 1)
        name = "<stdin>"
    else:
        check_symlinks(Path(path), where)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise _refuse(path, f"cannot read: {exc.strerror}", where) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                        else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                        else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
                raise _refuse(path, f"is {kind}; k8semu reads only regular files", where)
            if info.st_size > limit:
                raise _refuse(path, f"is {info.st_size} bytes; the limit is {limit} (the API server's 3 MiB)", where)
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
    if len(data) > limit:
        raise _refuse(name, f"is larger than {limit} bytes (the API server's 3 MiB limit)", where)
    return decode(data, name)


def decode(data: bytes, name: str) -> str:
    """UTF-8 text, or a located error at the first byte that is not.

    Raises:
        SpecError: with the line and column of the first invalid byte.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise SpecError([Problem(SourceRef(name, line, col), "",
                                 f"not valid UTF-8 (byte {data[exc.start]:#04x}); "
                                 "manifests are UTF-8 text")]) from None
