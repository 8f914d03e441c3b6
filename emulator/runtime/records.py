"""Run directories and the record of everything a cluster made.

    /run/k8semu/                 (K8SEMU_RUN_DIR overrides it, for tests)
        lock                     flock: slot allocation and the shared Open vSwitch state
        ovs.json                 what k8semu changed in Open vSwitch, and which clusters use it
        <cluster>/               one per running cluster (0700): records.json, sockets, logs,
            shared/<name>/       data the system pods read (DNS, ingress), mounted read-only
            pods/<pod>/          each pod's folder: container working directories and logs

Ownership works by tag, not by name: every object is created only if its name is free (the
kernel refuses an existing netns, link or bridge name, and so does ``ovs-vsctl add-br``), then
tagged (``tag``: ``k8semu:<cluster>:<run id>`` as an interface alias or OVS external_id; the
inode for a network namespace; the start time for a process), then recorded. Teardown removes
an object only if it still carries the tag, so a name clash can never make k8semu delete
someone else's object, and objects made just before a crash are still found by their tag.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from emulator.errors import ClusterRunningError
from emulator.model import naming

KINDS = ("netns", "links", "ovs_bridges", "processes", "cgroups", "files")
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the final NUL


def base_dir() -> Path:
    return Path(os.environ.get("K8SEMU_RUN_DIR", "/run/k8semu"))


def cluster_dir(cluster: str) -> Path:
    return base_dir() / cluster


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """Serialises what clusters share: slots and the Open vSwitch settings."""
    base = base_dir()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    fd = os.open(base / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class Records:
    path: Path
    data: dict = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path, cluster: str, slot: int) -> "Records":
        rec = cls(directory / "records.json", {"cluster": cluster, "slot": slot,
                                               "tag": f"k8semu:{cluster}:{secrets.token_hex(4)}",
                                               "netns": {}, **{k: [] for k in KINDS if k != "netns"}})
        rec.save()
        return rec

    @classmethod
    def load(cls, directory: Path) -> "Records | None":
        path = directory / "records.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(path, data) if isinstance(data, dict) and "tag" in data else None

    @property
    def tag(self) -> str:
        return self.data["tag"]

    @property
    def cluster(self) -> str:
        return self.data["cluster"]

    @property
    def scope(self) -> naming.Scope:
        return naming.Scope(self.cluster, self.data["slot"])

    def save(self) -> None:
        """Compact JSON: ``indent`` would make ``json`` use its pure-Python encoder, about ten
        times slower on a 1,000-pod cluster's records, which are saved with each batch of pods."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, separators=(",", ":")))
        tmp.replace(self.path)

    def add(self, kind: str, *items, save: bool = True) -> None:
        for item in items:
            if item not in self.data[kind]:
                self.data[kind].append(item)
        if save:
            self.save()

    def add_netns(self, name: str, inode: int, save: bool = True) -> None:
        self.data["netns"][name] = inode
        if save:
            self.save()

    def discard(self, kind: str, *items, save: bool = True) -> None:
        if kind == "netns":
            for name in items:
                self.data["netns"].pop(name, None)
        else:
            gone = set(map(repr, items))
            self.data[kind] = [x for x in self.data[kind] if repr(x) not in gone]
        if save:
            self.save()

    def items(self, kind: str) -> list:
        value = self.data.get(kind, [])
        return list(value.items()) if isinstance(value, dict) else list(value)

    def manager(self) -> tuple[int, int | None] | None:
        """The cluster's manager process: (pid, start time), if recorded."""
        return next(((pid, started) for pid, started, what in self.items("processes") if what == "manager"), None)


def all_records() -> list[Records]:
    base = base_dir()
    if not base.is_dir():
        return []
    out = []
    for child in sorted(base.iterdir()):
        if child.is_dir() and (rec := Records.load(child)) is not None:
            out.append(rec)
    return out


def allocate_slot(cluster: str, busy: Iterable[str] = ()) -> int:
    """The lowest slot no other cluster's records hold and none of whose names is in use: no
    interface and no name in ``busy`` (the OVS database's bridges) starts with its prefix.
    Call under ``machine_lock``.

    Raises:
        ClusterRunningError: the machine already holds MAX_SLOTS clusters (or their leftovers).
    """
    taken = {r.data.get("slot") for r in all_records() if r.cluster != cluster}
    names = [*os.listdir("/sys/class/net"), *busy]
    for slot in range(naming.MAX_SLOTS):
        prefix = naming.Scope(cluster, slot).prefix
        if slot not in taken and not any(name.startswith(prefix) for name in names):
            return slot
    raise ClusterRunningError(f"no free cluster slot: {naming.MAX_SLOTS} clusters (or their leftovers) "
                              "are on this machine; 'k8semu cleanup' removes leftovers")
