"""The kubelet's volume manager: a pod's volumes made before its sandbox, kept up to date while it
runs, removed with it.

configMap, secret, downwardAPI and projected volumes follow their sources the way the kubelet's
do: eventually (here within ``REFRESH`` seconds, where the kubelet takes its sync period plus its
ConfigMap cache's TTL, about a minute by default), atomically (``runtime.volumes``), never through
a subPath mount, and never into environment variables, which a container reads once when it
starts.
"""
from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulator.cluster.store import ClusterState, Record
from emulator.model import naming, podadmission, projection, satoken
from emulator.runtime import volumes

REFRESH = 1.0  # seconds between passes over running pods' projected volumes


def _capacity() -> tuple[int, int]:
    """This machine's CPUs (millicores) and memory (bytes): what every node has here."""
    memory = 0
    try:
        with open("/proc/meminfo") as f:
            memory = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))
    except (OSError, StopIteration, ValueError):
        pass
    return (os.cpu_count() or 1) * 1000, memory


@dataclass
class VolumeManager:
    state: ClusterState
    base: Path  # the cluster's run directory
    sa_key: bytes | None = None  # the ServiceAccount token signing key, read once it exists
    written: dict[tuple[str, str], str] = field(default_factory=dict)  # (pod key, volume) -> digest of its files
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)  # (pod key, uid) -> its projected token
    # (pod key, volume) -> what its files were made from: the pod's object and each ConfigMap or
    # Secret it reads, as stored objects (immutable: a change stores a new one)
    inputs: dict[tuple[str, str], tuple] = field(default_factory=dict)
    checked: float = 0.0
    capacity: tuple[int, int] = field(default_factory=_capacity)

    def _lookup(self, namespace: str) -> projection.Lookup:
        def lookup(kind: str, name: str) -> dict[str, bytes] | None:
            rec = self.state.get(kind, namespace, name)
            if rec is None:
                return None
            if kind == "Secret":
                return {k: base64.b64decode(v) for k, v in rec.obj.data.items()}
            out = {k: v.encode() for k, v in rec.obj.data.items()}
            out.update({k: base64.b64decode(v) for k, v in rec.obj.binary_data.items()})
            return out
        return lookup

    def _inputs(self, rec: Record, volume) -> tuple:
        """What ``volume``'s files depend on that can change while the pod runs. Why: every pod
        has a projected volume (its ServiceAccount's), and computing and hashing every pod's
        files each second held the manager's lock for tens of ms on 1,000 pods; with this a
        pass compares a few references per pod and makes files only where one changed."""
        found = (self.state.get(s.kind, rec.obj.meta.namespace, s.name) for s in volume.sources
                 if s.kind in ("ConfigMap", "Secret"))
        return (rec.obj, *(r.obj if r is not None else None for r in found))

    def _files(self, rec: Record, volume) -> projection.Files:
        def token(audience: str, seconds: int) -> str:  # one per pod, not one per pass (the audience is
            if (rec.obj.key, rec.uid) not in self.tokens:  # the cluster's own: the emulated API accepts it)
                self.tokens[(rec.obj.key, rec.uid)] = self._token(rec)
            return self.tokens[(rec.obj.key, rec.uid)]
        facts = projection.PodFacts(rec.uid, *self.capacity, token=token)
        return projection.volume_files(volume, rec.obj, facts, self._lookup(rec.obj.meta.namespace))

    def _token(self, rec: Record) -> str:
        """A token for the pod's ServiceAccount (what its ``kube-api-access-*`` volume holds);
        "" when the cluster has no API server (no key)."""
        if self.sa_key is None:
            key_file = self.base / satoken.KEY_FILE
            if not key_file.exists():
                return ""
            self.sa_key = key_file.read_bytes()
        namespace, account = rec.obj.meta.namespace, podadmission.account_name(rec.obj.spec.raw)
        holder = self.state.get("ServiceAccount", namespace, account)
        return satoken.issue(self.sa_key, namespace, account, holder.uid if holder else "", rec.obj.meta.name, rec.uid)

    @staticmethod
    def _digest(files: projection.Files) -> str:
        h = hashlib.sha256()
        for path in sorted(files):
            content, mode = files[path]
            h.update(f"{path}\0{mode}\0{len(content)}\0".encode() + content)
        return h.hexdigest()

    def setup(self, rec: Record) -> list[dict]:
        """Make every volume of the pod and return the binds its sandbox makes.

        Raises:
            MountError: a ConfigMap or Secret (or a key) a volume needs is missing, or a subPath
                is not in its volume: the pod waits (FailedMount) and is retried.
        """
        pod = rec.obj
        pod_dir = naming.pod_dir(pod.meta.namespace, pod.meta.name)
        for volume in pod.spec.volumes:
            folder = volumes.volume_folder(self.base, pod_dir, volume.name)
            if volume.writable:
                volumes.make_writable(folder)
                continue
            inputs = self._inputs(rec, volume)
            files = self._files(rec, volume)
            volumes.write_atomic(folder, files)
            self.written[(pod.key, volume.name)] = self._digest(files)
            self.inputs[(pod.key, volume.name)] = inputs
        wanted = [m for c in pod.spec.containers for m in c.mounts]
        return [m.to_dict() for m in volumes.mounts(self.base, pod_dir, pod.spec.volumes, wanted)]

    def due(self) -> bool:
        return bool(self.written) and time.monotonic() - self.checked >= REFRESH

    def refresh(self, running: list[Record]) -> None:
        """Rewrite the projected volumes whose sources changed (the kubelet calls it every
        REFRESH seconds). A source that has gone leaves the files as they were, as the kubelet does."""
        self.checked = time.monotonic()
        for rec in running:
            pod = rec.obj
            for volume in pod.spec.volumes:
                if volume.writable or (pod.key, volume.name) not in self.written:
                    continue
                inputs = self._inputs(rec, volume)
                before = self.inputs.get((pod.key, volume.name), ())
                if len(before) == len(inputs) and all(a is b for a, b in zip(before, inputs)):
                    continue  # nothing it is made from changed
                try:
                    files = self._files(rec, volume)
                except projection.MountError:
                    continue
                self.inputs[(pod.key, volume.name)] = inputs
                digest = self._digest(files)
                if digest != self.written[(pod.key, volume.name)]:
                    folder = volumes.volume_folder(self.base, naming.pod_dir(pod.meta.namespace, pod.meta.name),
                                                   volume.name)
                    volumes.write_atomic(folder, files)
                    self.written[(pod.key, volume.name)] = digest

    def remove(self, rec: Record) -> None:
        """The pod's volume folders, when it goes without a sandbox to take them along."""
        volumes.remove(self.base, naming.pod_dir(rec.obj.meta.namespace, rec.obj.meta.name))
        self.forget(rec.obj.key)

    def forget(self, key: str) -> None:
        for table in (self.written, self.tokens, self.inputs):
            for k in [k for k in table if k[0] == key]:
                del table[k]
