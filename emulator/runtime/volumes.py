"""A pod's volumes on the machine, and the mounts its sandbox makes of them.

Each volume is a folder under the run directory's ``volumes/<pod>/``, outside the pod's own
folder: the pod writes its own folder, and a configMap volume there could be swapped for a
symlink that the kubelet, as root, would then follow. emptyDir (and the types that are not
emulated) are empty folders, world-writable as the kubelet makes them; configMap, secret,
downwardAPI and projected volumes are written as the kubelet's AtomicWriter writes them
(pkg/volume/util/atomic_writer.go): the files in a timestamped folder ``..2026_12_06_...``,
``..data`` a symlink to it, each top-level name a symlink into ``..data``; an update writes a new
folder and renames a new ``..data`` over the old one, so a reader sees the old set or the new
one, never half of each. A subPath mount binds the file itself, and so, as in Kubernetes, does
not follow updates.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from emulator.model.projection import Files, MountError
from emulator.model.volume import EMPTY_DIR_MODE, Volume, VolumeMount

DATA = "..data"
DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class Mount:
    """One bind the sandbox makes: ``source`` (a host path k8semu made) at ``target``. A
    ``sub_path`` is walked by the sandbox itself, one component at a time without following
    symlinks, because the pod may have written the folder (an emptyDir) before."""
    source: str
    target: str
    read_only: bool
    sub_path: str = ""

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "read_only": self.read_only, "sub_path": self.sub_path}


def write_atomic(folder: Path, files: Files) -> None:
    """Make ``folder`` hold exactly ``files`` (relative path -> (bytes, mode)), atomically."""
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    stamp = tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S."), dir=folder)
    os.chmod(stamp, 0o755)
    for path, (content, mode) in sorted(files.items()):
        target = os.path.join(stamp, path)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, content)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    tmp = folder / DATA_TMP
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.basename(stamp), tmp)
    os.rename(tmp, folder / DATA)
    tops = {path.split("/", 1)[0] for path in files}
    for name in sorted(tops):
        if not os.path.lexists(folder / name):
            os.symlink(f"{DATA}/{name}", folder / name)
    for entry in os.listdir(folder):
        if entry in (DATA, os.path.basename(stamp)):
            continue
        if entry.startswith(".."):
            shutil.rmtree(folder / entry, ignore_errors=True)
        elif entry not in tops:
            os.unlink(folder / entry)


def volume_folder(base: Path, pod_dir: str, volume: str) -> Path:
    return base / "volumes" / pod_dir / volume


def make_writable(folder: Path) -> None:
    """An emptyDir: made once with the pod, kept across its containers' restarts."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, EMPTY_DIR_MODE)


def mounts(base: Path, pod_dir: str, volumes: tuple[Volume, ...], wanted: list[VolumeMount]) -> list[Mount]:
    """The binds for every container's volumeMounts (one per mountPath: the spec layer checked
    that containers agree on what is mounted where), parents before children.

    Raises:
        MountError: a subPath names a file the volume's source does not have.
    """
    by_name = {v.name: v for v in volumes}
    out: dict[str, Mount] = {}
    for m in wanted:
        volume = by_name[m.name]
        folder = volume_folder(base, pod_dir, volume.name)
        read_only = m.read_only or not volume.writable
        if m.mount_path in out:  # another container's mount of it: writable if any container writes
            out[m.mount_path] = Mount(out[m.mount_path].source, m.mount_path, out[m.mount_path].read_only and read_only,
                                      out[m.mount_path].sub_path)
            continue
        if m.sub_path and not volume.writable:  # written by k8semu only: its symlinks are trusted
            real = os.path.realpath(folder / m.sub_path)
            if os.path.commonpath([real, os.path.realpath(folder)]) != os.path.realpath(folder) or \
                    not os.path.exists(real):
                raise MountError(f'failed to prepare subPath for volumeMount "{m.name}": '
                                 f"{m.sub_path} does not exist in the volume")
            out[m.mount_path] = Mount(real, m.mount_path, read_only)
        else:
            out[m.mount_path] = Mount(str(folder), m.mount_path, read_only, m.sub_path)
    return [out[path] for path in sorted(out, key=lambda p: (p.count("/"), p))]


def remove(base: Path, pod_dir: str) -> None:
    """The pod's volumes, when its sandbox goes (rmtree does not follow the pod's symlinks)."""
    shutil.rmtree(base / "volumes" / pod_dir, ignore_errors=True)
