"""A pod's volume mounts, made inside its fresh mount namespace by ``podfs.setup``.

The pod's root is the machine's, read-only, so a mountPath that does not exist there (``/data``,
``/etc/config``) has no place to go. Where it would be made on the machine's files, the nearest
existing folder is *shadowed* first: a tmpfs mounted on it in the pod's namespace only, holding a
bind of each of its entries (symlinks copied), so the pod sees the same folder plus the new mount
points. For a new top-level folder the shadow is a new root (pivot_root): the machine's old root
stays attached under the pod's /sys, which podfs covers with the pod's own sysfs, as it covers the
host's /sys today. Under /run, /tmp, /var/tmp, /dev/shm and the masked folders, which podfs
replaces with tmpfs anyway, mount points are simply made there. Shadowing happens before podfs
masks anything, so the masks (``/etc/shadow`` and the rest) apply to the shadow too.

A subPath of a folder the pod may have written (an emptyDir) is walked one component at a time
without following symlinks, the fix Kubernetes made for CVE-2017-1002101; missing folders are
made as the kubelet makes them.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from emulator.runtime import linux

FD_PATH = "/proc/self/fd/{}"
STAGE = "/sys"  # where a new root is assembled: podfs mounts a fresh sysfs here afterwards
FORBIDDEN = ("/proc", "/sys", "/dev")


@dataclass
class Held:
    target: str  # the mount point, symlinks of the machine's resolved
    fd: int  # O_PATH of the source
    is_dir: bool
    read_only: bool
    late: bool  # under a folder podfs replaces with a tmpfs: made there, after it


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _walk(source: str, sub_path: str) -> int:
    """An O_PATH fd of ``source``/``sub_path``, made where missing, never through a symlink."""
    fd = os.open(source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in [p for p in sub_path.split("/") if p not in ("", ".")]:
        try:
            nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            os.mkdir(part, 0o755, dir_fd=fd)
            nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        os.close(fd)
        if stat.S_ISLNK(os.fstat(nfd).st_mode):
            os.close(nfd)
            raise OSError(f"subPath {sub_path!r}: {part!r} is a symlink")
        fd = nfd
    return fd


def hold(mounts: list[dict], late_roots: tuple[str, ...]) -> list[Held]:
    """Open every source before anything is hidden; resolve every target.

    Raises:
        OSError: a source is missing, a subPath goes through a symlink, or a target lies under
            /proc, /sys or /dev once the machine's symlinks are followed.
    """
    out = []
    for m in mounts:
        fd = _walk(m["source"], m["sub_path"]) if m.get("sub_path") else \
            os.open(m["source"], os.O_PATH | os.O_CLOEXEC)
        target = os.path.realpath(m["target"])
        if _under(target, FORBIDDEN) and not _under(target, ("/dev/shm",)):
            os.close(fd)
            raise OSError(f"mountPath {m['target']} leads to {target}, which is the pod's own")
        out.append(Held(target, fd, stat.S_ISDIR(os.fstat(fd).st_mode), bool(m["read_only"]),
                        _under(target, late_roots)))
    return out


def _existing_ancestor(path: str) -> str:
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _entries(folder: str, skip: tuple[str, ...] = ()) -> list[tuple[str, str, object]]:
    """``folder``'s entries, held before a tmpfs hides them: (name, "link", its target) or
    (name, "dir" | "file", an O_PATH fd)."""
    held: list[tuple[str, str, object]] = []
    for name in sorted(os.listdir(folder)):
        if name in skip:
            continue
        path = os.path.join(folder, name)
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            held.append((name, "link", os.readlink(path)))
        else:
            held.append((name, "dir" if stat.S_ISDIR(mode) else "file",
                         os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)))
    return held


def _populate(into: str, held: list[tuple[str, str, object]]) -> None:
    """Into the (empty, writable) ``into``: each held entry again, folders and files as binds
    (with what is mounted under them), symlinks as copies."""
    for name, kind, what in held:
        path = os.path.join(into, name)
        if kind == "link":
            os.symlink(what, path)
            continue
        if kind == "dir":
            os.mkdir(path, 0o755)
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        linux.mount(FD_PATH.format(what), path, None, linux.MS_BIND | linux.MS_REC)
        os.close(what)


def _make_point(target: str, is_dir: bool) -> None:
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def shadow(held: list[Held]) -> None:
    """Give every mount point on the machine's files a place (see the module's docstring).
    Runs before podfs makes anything read-only or masks anything."""
    missing = [h for h in held if not h.late and not os.path.lexists(h.target)]
    folders = sorted({_existing_ancestor(h.target) for h in missing}, key=lambda p: (p.count("/"), p))
    for folder in folders:
        if not os.path.isdir(folder) or os.path.islink(folder):
            raise OSError(f"cannot make a mount point under {folder}: not a folder")
        if folder == "/":
            entries = _entries("/", skip=("sys",))
            linux.mount("tmpfs", STAGE, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=755,size=1m")
            _populate(STAGE, entries)
            os.mkdir(os.path.join(STAGE, "sys"), 0o555)
            os.chdir(STAGE)
            linux.pivot_root(".", "sys")
            os.chdir("/")
        else:
            mode = stat.S_IMODE(os.stat(folder).st_mode)
            entries = _entries(folder)
            linux.mount("tmpfs", folder, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"mode={mode:o},size=1m")
            _populate(folder, entries)
    for h in missing:
        _make_point(h.target, h.is_dir)


def attach(held: list[Held]) -> None:
    """Bind every volume at its mount point, parents before children. Runs once podfs has made
    /run, /tmp and the masks, before the masks become read-only."""
    for h in held:
        # under /run or /tmp, or inside a volume mounted just before (a writable one: runc makes a
        # nested mount point in the volume the same way)
        _make_point(h.target, h.is_dir)
        linux.mount(FD_PATH.format(h.fd), h.target, None, linux.MS_BIND)
        flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_NOSUID | linux.MS_NODEV
        linux.mount(None, h.target, None, flags | (linux.MS_RDONLY if h.read_only else 0))
        os.close(h.fd)
