"""The cluster's kubeconfig, merged into the user's as kind does it.

``up`` merges a cluster, a user and a context all named ``k8semu-<cluster>`` into the first
file of ``$KUBECONFIG`` or into the invoking user's ``~/.kube/config`` (the user behind sudo,
not root's), and makes it the current context; ``down`` removes those three entries and
nothing else. The file is locked the way client-go locks it (``<file>.lock`` made with
O_EXCL), so a kubectl writing at the same time is not overwritten, and written whole through
a temporary file, keeping its owner and mode. A file k8semu creates belongs to that user.
"""
from __future__ import annotations

import base64
import os
import pwd
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import yaml

from emulator.api.pki import Paths
from emulator.errors import K8semuError

LOCK_WAIT = 5.0


def context_name(cluster: str) -> str:
    return f"k8semu-{cluster}"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def admin_config(cluster: str, server: str, paths: Paths) -> dict:
    """A kubeconfig holding only this cluster's admin context, certificates embedded."""
    name = context_name(cluster)
    return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": server,
                                                     "certificate-authority-data": _b64(paths.ca)}}],
            "users": [{"name": name, "user": {"client-certificate-data": _b64(paths.admin_cert),
                                              "client-key-data": _b64(paths.admin_key)}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}


def _owner(env: Mapping[str, str]) -> tuple[str, int, int]:
    """Home, uid and gid of the user who ran the command (behind sudo if through it)."""
    user = env.get("SUDO_USER")
    if user:
        try:
            entry = pwd.getpwnam(user)
            return entry.pw_dir, entry.pw_uid, entry.pw_gid
        except KeyError:
            pass
    return env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir, os.getuid(), os.getgid()


def target(env: Mapping[str, str] | None = None) -> tuple[Path, int, int]:
    """The file to merge into, and the owner a new one gets."""
    env = os.environ if env is None else env
    home, uid, gid = _owner(env)
    first = next((p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p), "")
    return (Path(first) if first else Path(home) / ".kube" / "config"), uid, gid


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise K8semuError(f"{lock} exists (another kubectl writing the file?); remove it if none is") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _load(path: Path) -> dict:
    if not path.exists():
        return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [],
                "contexts": [], "current-context": ""}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise K8semuError(f"{path} is not a kubeconfig k8semu can read ({exc}); left as it is") from None
    if not isinstance(doc, dict):
        raise K8semuError(f"{path} is not a kubeconfig (not a mapping); left as it is")
    return doc


def _make_dir(path: Path, uid: int, gid: int) -> None:
    """A fresh machine has no ~/.kube: make it as kubectl would (0700, the user's), before the
    lock file goes in it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        os.chown(path.parent, uid, gid)


def _save(path: Path, doc: dict, uid: int, gid: int) -> None:
    if path.exists():
        st = path.stat()
        mode, uid, gid = st.st_mode & 0o777, st.st_uid, st.st_gid
    else:
        mode = 0o600
    tmp = path.with_name(f".{path.name}.k8semu-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, default_flow_style=False)
    os.chown(tmp, uid, gid)
    os.replace(tmp, path)


def _without(entries: list | None, name: str) -> list:
    return [e for e in entries or [] if not (isinstance(e, dict) and e.get("name") == name)]


def merge(config: dict, path: Path, uid: int, gid: int) -> None:
    """Put ``config``'s one cluster, user and context into ``path`` and make it current."""
    name = config["current-context"]
    _make_dir(path, uid, gid)
    with _locked(path):
        doc = _load(path)
        for key in ("clusters", "users", "contexts"):
            doc[key] = _without(doc.get(key), name) + config[key]
        doc["current-context"] = name
        _save(path, doc, uid, gid)


def remove(cluster: str, path: Path) -> bool:
    """Take this cluster's entries out of ``path`` (the current context too, if it is ours);
    False when there was nothing of ours in it."""
    name = context_name(cluster)
    if not path.exists():
        return False
    with _locked(path):
        doc = _load(path)
        before = sum(len(doc.get(k) or []) for k in ("clusters", "users", "contexts"))
        for key in ("clusters", "users", "contexts"):
            doc[key] = _without(doc.get(key), name)
        ours = before != sum(len(doc[k]) for k in ("clusters", "users", "contexts"))
        if doc.get("current-context") == name:
            doc["current-context"] = ""
            ours = True
        if ours:
            st = path.stat()
            _save(path, doc, st.st_uid, st.st_gid)
        return ours
